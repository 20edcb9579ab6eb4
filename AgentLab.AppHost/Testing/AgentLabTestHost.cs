using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Lab;

namespace AgentLab.AppHost.Testing;

/// <summary>
/// The whole lab for end-to-end tests, in the spirit of Aspire.Hosting.Testing: the same resource graph as
/// <c>dotnet run --project AgentLab.AppHost</c>, as separate processes, on free ports, with a throw-away PostgreSQL
/// cluster and the simulator as the model server. Disposing it stops everything and deletes the data folder.
/// </summary>
public sealed class AgentLabTestHost : IAsyncDisposable
{
    private readonly LabApp _app;
    private readonly string _dataRoot;

    private AgentLabTestHost(LabApp app, string dataRoot, StringWriter output)
    {
        _app = app;
        _dataRoot = dataRoot;
        Output = output;
    }

    /// <summary>Everything the AppHost printed (status lines and each resource's prefixed output).</summary>
    public StringWriter Output { get; }

    public LabApp App => _app;

    /// <param name="settings">Extra configuration, e.g. <c>AppHost:RestartDelayMilliseconds</c>.</param>
    public static async Task<AgentLabTestHost> StartAsync(IReadOnlyDictionary<string, string?>? settings = null,
        CancellationToken ct = default)
    {
        var dataRoot = Directory.CreateTempSubdirectory("agentlab-test-").FullName;
        var all = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["AppHost:Ports:backend"] = "0",
            ["AppHost:Ports:labservice"] = "0",
            ["AppHost:UseSimulator"] = "true",
            ["AppHost:EchoOutput"] = "false",
            ["Postgres:DataDirectory"] = Path.Combine(dataRoot, "postgres"),
            ["Postgres:ThrowAway"] = "true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;

        var output = new StringWriter();
        var writer = TextWriter.Synchronized(output);
        var builder = LabAppBuilder.Create(all, writer);
        await LabGraph.DeclareAsync(builder, ct).ConfigureAwait(false);
        var app = builder.Build();
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            TryDelete(dataRoot);
            throw;
        }
        return new AgentLabTestHost(app, dataRoot, output);
    }

    /// <summary>A client whose base address is the resource's endpoint (<c>backend</c>, <c>labservice</c>, <c>ollama</c>).</summary>
    public HttpClient CreateHttpClient(string resource) =>
        new() { BaseAddress = _app.GetResource(resource).Endpoint ?? throw new InvalidOperationException($"'{resource}' has no endpoint.") };

    /// <summary>The connection string a resource gives its dependents (<c>postgres</c> gives agentlabdb's).</summary>
    public string? GetConnectionString(string resource)
    {
        var exported = _app.GetResource(resource).GetReferenceConfiguration();
        return exported.FirstOrDefault(e => e.Key.StartsWith("ConnectionStrings__", StringComparison.Ordinal)).Value;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        TryDelete(_dataRoot);
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
            // A server still closing its files: the OS temp cleaner gets it.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
