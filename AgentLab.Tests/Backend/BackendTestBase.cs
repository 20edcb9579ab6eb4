using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace AgentLab.Tests.Backend;

/// <summary>
/// Each test gets its own fake LabService and its own Backend (xunit makes a class instance per test), so no test
/// sees another's requests or settings.
/// </summary>
public abstract class BackendTestBase : IAsyncLifetime
{
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly List<BackendFactory> _factories = [];

    protected FakeLabService Lab { get; private set; } = null!;

    /// <summary>This test's own database on the shared PostgreSQL server, migrated and empty.</summary>
    protected Support.TestDatabase Database { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Lab = await FakeLabService.StartAsync(Ct);
        Database = await Support.SharedPostgres.CreateDatabaseAsync(Ct);
    }

    /// <summary>A client of a Backend whose LabService is the fake (or <paramref name="labAddress"/>).</summary>
    protected HttpClient Backend(IReadOnlyDictionary<string, string?>? settings = null, Uri? labAddress = null) =>
        Backend(settings, out _, labAddress);

    /// <summary>The same, handing out the factory too (to stop that Backend mid-test; disposing twice is harmless).</summary>
    protected HttpClient Backend(IReadOnlyDictionary<string, string?>? settings, out BackendFactory factory, Uri? labAddress = null)
    {
        factory = new BackendFactory(labAddress ?? Lab.BaseAddress, Database.ConnectionString, settings);
        _factories.Add(factory);
        return factory.CreateClient();
    }

    protected static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, string json, string contentType = "application/json")
    {
        var content = new StringContent(json, Encoding.UTF8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return client.PostAsync("/api/v1/execute", content, Ct).WaitAsync(Bound, Ct);
    }

    protected static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        (await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(Ct), cancellationToken: Ct).WaitAsync(Bound, Ct)).RootElement;

    /// <summary>Asserts a 202 Accepted with its body (the body shows in the failure when it is something else).</summary>
    protected static async Task<JsonElement> AssertAcceptedAsync(HttpResponseMessage response)
    {
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"expected 202, got {(int)response.StatusCode}: {body}");
        return body;
    }

    /// <summary>Asserts a problem reply with the status and code, carrying a trace_id; returns its body.</summary>
    protected static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, int status, string code)
    {
        var body = await JsonAsync(response);
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("trace_id").GetString()));
        return body;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var factory in _factories)
            await factory.DisposeAsync();
        await Lab.DisposeAsync();
        await Database.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
