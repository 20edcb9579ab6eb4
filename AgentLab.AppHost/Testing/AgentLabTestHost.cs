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

    private readonly LabCredentials _credentials;

    private AgentLabTestHost(LabApp app, string dataRoot, StringWriter output, LabCredentials credentials)
    {
        _app = app;
        _credentials = credentials;
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
            // The dashboard and its OTLP receiver on free ports: tests run side by side.
            ["Dashboard:Port"] = "0",
            ["Dashboard:OtlpPort"] = "0",
            ["Postgres:DataDirectory"] = Path.Combine(dataRoot, "postgres"),
            ["Postgres:ThrowAway"] = "true",
            // End-to-end tests poll executions every 50 ms; the Backend's per-minute limits are tested on their own.
            ["AppHost:Environment:backend:RateLimits__PerSubjectPerMinute"] = "1000000",
            ["AppHost:Environment:backend:RateLimits__PerIpPerMinute"] = "1000000",
            ["AppHost:Environment:backend:RateLimits__ExecutionsPerSubjectPerMinute"] = "1000000",
            // A key of its own: tests never touch the developer's .agentlab/dev-signing-key.
            ["Auth:SigningKey"] = AgentLab.ServiceDefaults.Security.AgentLabTokens.Encode(AgentLab.ServiceDefaults.Security.AgentLabTokens.NewKey()),
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;

        var output = new StringWriter();
        var writer = TextWriter.Synchronized(output);
        var builder = LabAppBuilder.Create(all, writer);
        var credentials = await LabGraph.DeclareAsync(builder, ct).ConfigureAwait(false);
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
        return new AgentLabTestHost(app, dataRoot, output, credentials);
    }

    /// <summary>A client whose base address is the resource's endpoint (<c>backend</c>, <c>labservice</c>, <c>ollama</c>).</summary>
    public HttpClient CreateHttpClient(string resource) =>
        new() { BaseAddress = _app.GetResource(resource).Endpoint ?? throw new InvalidOperationException($"'{resource}' has no endpoint.") };

    /// <summary>A client of the Backend that speaks for <paramref name="subject"/> (a token signed with this lab's key).</summary>
    public HttpClient CreateBackendClient(string subject = LabCredentials.DeveloperSubject, params string[] roles)
    {
        var client = CreateHttpClient("backend");
        client.DefaultRequestHeaders.Authorization = new("Bearer", _credentials.Mint(subject, roles));
        return client;
    }

    /// <summary>The key LabService expects from the Backend in this lab.</summary>
    public string ServiceKey => _credentials.ServiceKey;

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
