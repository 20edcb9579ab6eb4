using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class HealthTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Health_AllChecksHealthy_Returns200WithSnakeCaseShape()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = await TestHost.StartAsync(_ => { }, b => b.Services.AddHealthChecks()
            .AddCheck("db", () => HealthCheckResult.Healthy("reachable", new Dictionary<string, object> { ["latency_ms"] = 3 })));
        using var client = host.CreateClient();

        using var response = await client.GetAsync("/health", ct).WaitAsync(Timeout, ct);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", body.RootElement.GetProperty("status").GetString());
        var db = body.RootElement.GetProperty("checks").GetProperty("db");
        Assert.Equal("healthy", db.GetProperty("status").GetString());
        Assert.Equal("reachable", db.GetProperty("description").GetString());
        Assert.True(db.GetProperty("duration_ms").GetDouble() >= 0);
        Assert.Equal(3, db.GetProperty("data").GetProperty("latency_ms").GetInt32());
        Assert.True(body.RootElement.GetProperty("checks").TryGetProperty("self", out _));
    }

    [Fact]
    public async Task Health_FailingReadyCheck_Returns503ButAliveStays200()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = await TestHost.StartAsync(_ => { }, b => b.Services.AddHealthChecks()
            .AddCheck("db", () => HealthCheckResult.Unhealthy("connection refused"), ["ready"]));
        using var client = host.CreateClient();

        using var health = await client.GetAsync("/health", ct).WaitAsync(Timeout, ct);
        using var alive = await client.GetAsync("/alive", ct).WaitAsync(Timeout, ct);
        using var healthBody = JsonDocument.Parse(await health.Content.ReadAsStringAsync(ct));
        using var aliveBody = JsonDocument.Parse(await alive.Content.ReadAsStringAsync(ct));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Equal("unhealthy", healthBody.RootElement.GetProperty("status").GetString());
        Assert.Equal("unhealthy", healthBody.RootElement.GetProperty("checks").GetProperty("db").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
        Assert.Equal("healthy", aliveBody.RootElement.GetProperty("status").GetString());
        Assert.False(aliveBody.RootElement.GetProperty("checks").TryGetProperty("db", out _));
    }

    [Fact]
    public async Task Health_DegradedCheck_Returns200Degraded()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var host = await TestHost.StartAsync(_ => { }, b => b.Services.AddHealthChecks()
            .AddCheck("model_server", () => HealthCheckResult.Degraded("simulator")));
        using var client = host.CreateClient();

        using var response = await client.GetAsync("/health", ct).WaitAsync(Timeout, ct);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("degraded", body.RootElement.GetProperty("status").GetString());
    }
}
