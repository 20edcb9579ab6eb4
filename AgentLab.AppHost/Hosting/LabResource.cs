using AgentLab.AppHost.Infrastructure;
using System.Globalization;

namespace AgentLab.AppHost.Hosting;

/// <summary>What a resource needs from the runner to describe its process.</summary>
public sealed record ResourceContext(
    string RepositoryRoot,
    string BuildConfiguration,
    IReadOnlyDictionary<string, string> Environment);

/// <summary>
/// A named part of the lab (a project, an executable, a server, an external endpoint), in Aspire's shape: it has a
/// state, maybe an endpoint, a restart count and a bounded console log; it waits for and references other resources.
/// </summary>
public abstract class LabResource(string name)
{
    private readonly Lock _gate = new();
    private ResourceState _state = ResourceState.Waiting;

    public string Name { get; } = name;

    public ResourceState State
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>Where it answers (http://127.0.0.1:port), once its port is known.</summary>
    public Uri? Endpoint { get; internal set; }

    /// <summary>The OS process of its latest start, if it runs one (tests use it to simulate a crash).</summary>
    public int? ProcessId { get; internal set; }

    /// <summary>
    /// Times it was started again after exiting on its own (crash restarts only: a stop, start or restart asked for
    /// from the dashboard is not counted).
    /// </summary>
    public int RestartCount { get; internal set; }

    /// <summary>When its current process became ready (uptime starts here); null while it has no ready process.</summary>
    public DateTimeOffset? StartedAt { get; internal set; }

    /// <summary>What sort of resource it is, for the dashboard.</summary>
    public abstract ResourceKind Kind { get; }

    /// <summary>Why it failed or what it is waiting for, for the status table.</summary>
    public string? Message { get; internal set; }

    /// <summary>The port asked for in code (0 = any free port); configuration <c>Ports:{name}</c> wins.</summary>
    public int? Port { get; internal set; }

    /// <summary>HTTP path that answers 2xx when the resource is ready (requires an endpoint).</summary>
    public string? HealthCheckPath { get; internal set; }

    /// <summary>Custom readiness: true once ready. Used when there is no HTTP health check.</summary>
    public Func<CancellationToken, Task<bool>>? ReadinessProbe { get; internal set; }

    /// <summary>Console output, bounded; created by the runner with the configured capacity.</summary>
    public ResourceLog Log { get; internal set; } = new(name, 1000);

    /// <summary>Raised after every state change (resource, from, to), on the thread that changed it.</summary>
    public event Action<LabResource, ResourceState, ResourceState>? StateChanged;

    internal List<LabResource> WaitsFor { get; } = [];

    internal List<LabResource> References { get; } = [];

    internal List<KeyValuePair<string, Func<string>>> EnvironmentEntries { get; } = [];

    /// <summary>A connection string others get as <c>ConnectionStrings__{Name}</c>; null when it exports none.</summary>
    public virtual string? ConnectionString => null;

    /// <summary>Whether others get <c>services__{Name}__http__0</c> (service discovery) when they reference it.</summary>
    protected virtual bool ExportsServiceEndpoint => false;

    /// <summary>What a resource that references this one receives, in Aspire's variable names.</summary>
    public virtual IEnumerable<KeyValuePair<string, string>> GetReferenceConfiguration()
    {
        if (ConnectionString is { } cs)
            yield return new($"ConnectionStrings__{Name}", cs);
        if (ExportsServiceEndpoint && Endpoint is { } endpoint)
            yield return new($"services__{Name}__http__0", endpoint.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>One-time work before the first start.</summary>
    internal virtual Task PrepareAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>The process to start, or null when there is nothing to run (an external resource).</summary>
    internal abstract ProcessSpec? CreateProcess(ResourceContext context);

    /// <summary>Returns once the resource is ready; the runner bounds it. Default: health check, probe, or at once.</summary>
    internal virtual async Task WaitReadyAsync(HttpClient http, CancellationToken ct)
    {
        while (!await IsHealthyAsync(http, ct).ConfigureAwait(false))
            await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
    }

    /// <summary>One health look: the HTTP check, else the probe, else healthy.</summary>
    internal virtual async Task<bool> IsHealthyAsync(HttpClient http, CancellationToken ct)
    {
        if (HealthCheckPath is { } path && Endpoint is { } endpoint)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(endpoint, path), ct).ConfigureAwait(false);
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false; // not listening yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                return false; // the per-request timeout
            }
        }
        return ReadinessProbe is null || await ReadinessProbe(ct).ConfigureAwait(false);
    }

    /// <summary>Work after the first readiness (e.g. create a database).</summary>
    internal virtual Task AfterReadyAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>Sets the state; returns false (and changes nothing) when it already was <paramref name="state"/>.</summary>
    internal bool SetState(ResourceState state)
    {
        ResourceState previous;
        lock (_gate)
        {
            previous = _state;
            if (previous == state)
                return false;
            _state = state;
        }
        StateChanged?.Invoke(this, previous, state);
        return true;
    }

    /// <summary>The scheme of its endpoint: http for services, tcp for servers such as PostgreSQL.</summary>
    internal string EndpointScheme { get; set; } = "http";

    internal void SetEndpoint(int port)
    {
        Port = port;
        Endpoint = new Uri(string.Create(CultureInfo.InvariantCulture, $"{EndpointScheme}://127.0.0.1:{port}"));
    }
}

/// <summary>One of our .NET services, run from its build output: <c>dotnet bin/{Config}/net10.0/{Project}.dll --urls ...</c>.</summary>
public sealed class ProjectResource(string name, string projectName) : LabResource(name)
{
    public override ResourceKind Kind => ResourceKind.Project;

    public string ProjectName { get; } = projectName;

    /// <summary>When set, the project also exports a connection string built from its endpoint (the simulator does).</summary>
    internal Func<Uri, string>? ConnectionStringFactory { get; set; }

    public override string? ConnectionString =>
        ConnectionStringFactory is { } factory && Endpoint is { } endpoint ? factory(endpoint) : null;

    protected override bool ExportsServiceEndpoint => true;

    /// <summary>The service's build output; the AppHost's ProjectReferences build it before the AppHost runs.</summary>
    public string OutputDirectory(ResourceContext context) =>
        Path.Combine(context.RepositoryRoot, ProjectName, "bin", context.BuildConfiguration, "net10.0");

    internal override ProcessSpec CreateProcess(ResourceContext context)
    {
        var output = OutputDirectory(context);
        var dll = Path.Combine(output, ProjectName + ".dll");
        if (!File.Exists(dll))
        {
            throw new LabStartupException(
                $"{Name}: {dll} does not exist. Build it first: `dotnet build AgentLab.AppHost -c {context.BuildConfiguration}` " +
                "builds every service the AppHost starts (or start it with `dotnet run --project AgentLab.AppHost`).");
        }
        var urls = Endpoint?.GetLeftPart(UriPartial.Authority)
            ?? throw new LabStartupException($"{Name}: no HTTP endpoint; declare one with WithHttpEndpoint(port).");
        var environment = new Dictionary<string, string>(context.Environment)
        {
            ["OTEL_SERVICE_NAME"] = Name,
        };
        // The working directory is the content root: the service reads its own appsettings.json.
        return new ProcessSpec("dotnet", [dll, "--urls", urls], environment, output);
    }
}

/// <summary>Any process, described by a factory that receives the environment built from references.</summary>
public sealed class ExecutableResource(string name, Func<ResourceContext, ProcessSpec> factory) : LabResource(name)
{
    public override ResourceKind Kind => ResourceKind.Executable;

    protected override bool ExportsServiceEndpoint => Endpoint is not null;

    internal override ProcessSpec CreateProcess(ResourceContext context)
    {
        var spec = factory(context);
        // The references and WithEnvironment values are added to what the factory set, and win over it.
        var environment = new Dictionary<string, string>(spec.Environment);
        foreach (var (key, value) in context.Environment)
            environment[key] = value;
        return spec with { Environment = environment };
    }
}

/// <summary>Something already running elsewhere, known only by its connection string (no process to start).</summary>
public sealed class ExternalResource(string name, string connectionString) : LabResource(name)
{
    public override ResourceKind Kind => ResourceKind.External;

    public override string? ConnectionString { get; } = connectionString;

    internal override ProcessSpec? CreateProcess(ResourceContext context) => null;
}

/// <summary>A server from an infrastructure recipe (PostgreSQL, Garnet) under the runner.</summary>
public sealed class InfrastructureResource(IInfrastructureRecipe recipe, TextWriter output) : LabResource(recipe.Name)
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(100);
    private int _afterReadyDone;

    public IInfrastructureRecipe Recipe { get; } = recipe;

    public override ResourceKind Kind => ResourceKind.Infrastructure;

    public override IEnumerable<KeyValuePair<string, string>> GetReferenceConfiguration() => Recipe.ExportedEnvironment;

    internal override async Task PrepareAsync(CancellationToken ct)
    {
        await Recipe.PrepareAsync(ct).ConfigureAwait(false);
        foreach (var notice in Recipe.Notices)
            output.WriteLine($"[{Name}] {notice}");
    }

    // The recipe was made for its port (LabAppBuilder.AddInfrastructure passes the same one to the runner).
    internal override ProcessSpec? CreateProcess(ResourceContext context) => Recipe.CreateProcessSpec();

    internal override async Task WaitReadyAsync(HttpClient http, CancellationToken ct)
    {
        // Each probe is bounded by the recipe; the runner bounds the whole wait through ct.
        while (!await Recipe.IsReadyAsync(ct).ConfigureAwait(false))
            await Task.Delay(ProbeInterval, ct).ConfigureAwait(false);
    }

    internal override Task AfterReadyAsync(CancellationToken ct) =>
        Interlocked.Exchange(ref _afterReadyDone, 1) == 0 ? Recipe.AfterReadyAsync(ct) : Task.CompletedTask;
}
