using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Infrastructure;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace AgentLab.AppHost.Hosting;

/// <summary>Declares the lab's resources in code, after Aspire's DistributedApplicationBuilder; <see cref="Build"/> gives the runner.</summary>
public sealed class LabAppBuilder
{
    private readonly List<LabResource> _resources = [];

    private LabAppBuilder(ConfigurationManager configuration, TextWriter output, string repositoryRoot, string buildConfiguration)
    {
        Configuration = configuration;
        Output = TextWriter.Synchronized(output);
        RepositoryRoot = repositoryRoot;
        BuildConfiguration = buildConfiguration;
        Options = configuration.GetSection(AppHostOptions.Section).Get<AppHostOptions>() ?? new AppHostOptions();
        Validator.ValidateObject(Options, new ValidationContext(Options), validateAllProperties: true);
        // `--Ports:backend=8000` (the short form the README shows) wins over AppHost:Ports:backend.
        foreach (var port in configuration.GetSection("Ports").GetChildren())
        {
            if (!int.TryParse(port.Value, out var value) || value is < 0 or > 65535)
                throw new LabStartupException($"Ports:{port.Key} is '{port.Value}': give a port number from 0 (any free port) to 65535.");
            Options.Ports[port.Key] = value;
        }
    }

    /// <summary>appsettings.json beside the AppHost, then environment variables, then the command line.</summary>
    public static LabAppBuilder Create(string[] args)
    {
        var configuration = new ConfigurationManager();
        configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        configuration.AddEnvironmentVariables();
        configuration.AddCommandLine(args);
        var buildConfiguration = Assembly.GetEntryAssembly()?.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        return new LabAppBuilder(configuration, Console.Out, FindRepositoryRoot(), buildConfiguration);
    }

    /// <summary>For tests and tools: explicit configuration, output and paths.</summary>
    public static LabAppBuilder Create(IEnumerable<KeyValuePair<string, string?>> settings, TextWriter output,
        string? repositoryRoot = null, string buildConfiguration = "Debug")
    {
        var configuration = new ConfigurationManager();
        configuration.AddInMemoryCollection(settings);
        return new LabAppBuilder(configuration, output, repositoryRoot ?? FindRepositoryRoot(), buildConfiguration);
    }

    public ConfigurationManager Configuration { get; }

    public AppHostOptions Options { get; }

    /// <summary>Where resource output and status lines go (the console, or a test's writer).</summary>
    public TextWriter Output { get; }

    public string RepositoryRoot { get; }

    public string BuildConfiguration { get; }

    public IReadOnlyList<LabResource> Resources => _resources;

    /// <summary>One of our .NET projects (folder and assembly name <paramref name="projectName"/>), run from its build output.</summary>
    public IResourceBuilder<ProjectResource> AddProject(string name, string projectName) =>
        AddResource(new ProjectResource(name, projectName));

    /// <summary>Any process; <paramref name="factory"/> describes it when it (re)starts.</summary>
    public IResourceBuilder<ExecutableResource> AddExecutable(string name, Func<ResourceContext, ProcessSpec> factory) =>
        AddResource(new ExecutableResource(name, factory));

    /// <summary>Something that runs elsewhere, given by its connection string (nothing is started).</summary>
    public IResourceBuilder<ExternalResource> AddConnectionString(string name, string connectionString) =>
        AddResource(new ExternalResource(name, connectionString));

    /// <summary>A server from an infrastructure recipe, which was made for <paramref name="port"/> (see <see cref="PortFor"/>).</summary>
    public IResourceBuilder<InfrastructureResource> AddInfrastructure(IInfrastructureRecipe recipe, int port)
    {
        var resource = new InfrastructureResource(recipe, Output) { Port = port, EndpointScheme = "tcp" };
        return AddResource(resource);
    }

    /// <summary>
    /// The port for a server resource: configured (<c>--Ports:name=N</c> or <c>AppHost:Ports:name</c>), else a free
    /// loopback port. Chosen before the recipe, which is made for one port.
    /// </summary>
    public int PortFor(string name)
    {
        if (Options.Ports.TryGetValue(name, out var configured) && configured > 0)
            return configured;
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public IResourceBuilder<T> AddResource<T>(T resource) where T : LabResource
    {
        if (_resources.Any(r => string.Equals(r.Name, resource.Name, StringComparison.OrdinalIgnoreCase)))
            throw new ArgumentException($"A resource named '{resource.Name}' is already declared.", nameof(resource));
        resource.Log = new ResourceLog(resource.Name, Options.LogCapacity);
        _resources.Add(resource);
        return new ResourceBuilder<T>(resource, this);
    }

    /// <summary>Lines printed once every resource is up (where to start: a token, a URL), after the status table.</summary>
    public List<string> ReadyNotes { get; } = [];

    /// <summary>The <c>Dashboard</c> section (enabled by default).</summary>
    public DashboardOptions DashboardOptions =>
        Configuration.GetSection(DashboardOptions.Section).Get<DashboardOptions>() ?? new DashboardOptions();

    public LabApp Build()
    {
        var dashboard = DashboardOptions is { Enabled: true } options ? new LabDashboard(options) : null;
        return new(_resources, Options, Output, new ResourceContextFactory(RepositoryRoot, BuildConfiguration), ReadyNotes, dashboard);
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AgentLab.sln")))
                return dir.FullName;
        }
        return Directory.GetCurrentDirectory();
    }
}

internal sealed record ResourceContextFactory(string RepositoryRoot, string BuildConfiguration)
{
    public ResourceContext Create(IReadOnlyDictionary<string, string> environment) =>
        new(RepositoryRoot, BuildConfiguration, environment);
}
