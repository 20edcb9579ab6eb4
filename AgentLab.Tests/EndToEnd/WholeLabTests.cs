using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Testing;

namespace AgentLab.Tests.EndToEnd;

/// <summary>The whole lab as the AppHost runs it (PostgreSQL, Garnet, simulator, LabService, Backend as processes).</summary>
public sealed class WholeLabFixture : IAsyncLifetime
{
    public AgentLabTestHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() =>
        // A restart delay long enough that a test can see LabService down before it comes back.
        Host = await AgentLabTestHost.StartAsync(new Dictionary<string, string?> { ["AppHost:RestartDelayMilliseconds"] = "3000" },
            TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromMinutes(2));

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

public sealed class WholeLabTests(WholeLabFixture lab) : IClassFixture<WholeLabFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Execute_ThroughTheWholeLab_ReturnsCompletedResultFromTheSimulator()
    {
        using var backend = lab.Host.CreateBackendClient();

        using var response = await ExecuteAsync(backend);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("output").GetString()));
        Assert.StartsWith("Host=127.0.0.1;", lab.Host.GetConnectionString("postgres"), StringComparison.Ordinal);
        Assert.StartsWith("127.0.0.1:", lab.Host.GetConnectionString("redis"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Security_PrintedTokenWorks_AnonymousAndDirectLabServiceCallsAreRefused()
    {
        var printed = System.Text.RegularExpressions.Regex.Match(lab.Host.Output.ToString(), @"Authorization: Bearer (\S+)");
        using var withPrinted = lab.Host.CreateHttpClient("backend");
        withPrinted.DefaultRequestHeaders.Authorization = new("Bearer", printed.Groups[1].Value);
        using var anonymous = lab.Host.CreateHttpClient("backend");
        using var direct = lab.Host.CreateHttpClient("labservice");

        using var history = await withPrinted.GetAsync("/api/v1/history", Ct).WaitAsync(Bound, Ct);
        using var refused = await anonymous.GetAsync("/api/v1/history", Ct).WaitAsync(Bound, Ct);
        using var around = await direct.GetAsync("/models/", Ct).WaitAsync(Bound, Ct);
        using var models = await withPrinted.GetAsync("/api/v1/models", Ct).WaitAsync(Bound, Ct);

        Assert.True(printed.Success, "the AppHost printed a token");
        Assert.Equal(HttpStatusCode.OK, history.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, around.StatusCode);   // nobody goes around the Backend
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);             // the Backend itself holds the service key
    }

    [Fact]
    public async Task LabServiceKilled_SeenInDetailedHealth_ThenRestartedAndServingAgain()
    {
        using var backend = lab.Host.CreateBackendClient();
        var labservice = lab.Host.App.GetResource("labservice");
        var restartsBefore = labservice.RestartCount;

        Process.GetProcessById(labservice.ProcessId!.Value).Kill(entireProcessTree: true);
        var sawDown = await PollAsync(async () => await LabServiceStatusAsync(backend) == "unhealthy", "LabService to be reported unhealthy");
        var sawBack = await PollAsync(async () => await LabServiceStatusAsync(backend) == "healthy", "LabService to be healthy again");
        using var response = await ExecuteAsync(backend);

        Assert.True(sawDown);
        Assert.True(sawBack);
        Assert.Equal(restartsBefore + 1, labservice.RestartCount);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static Task<HttpResponseMessage> ExecuteAsync(HttpClient backend) =>
        backend.PostAsync("/api/v1/execute",
            new StringContent("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""", Encoding.UTF8, "application/json"), Ct)
            .WaitAsync(Bound, Ct);

    private static async Task<string?> LabServiceStatusAsync(HttpClient backend)
    {
        using var response = await backend.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        return body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString();
    }

    private static async Task<bool> PollAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            if (await condition())
                return true;
            await Task.Delay(100, Ct);
        }
        throw new TimeoutException($"Waited {Bound.TotalSeconds} s for {what}.");
    }
}
