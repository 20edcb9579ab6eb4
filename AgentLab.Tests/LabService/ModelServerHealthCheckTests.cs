using AgentLab.LabService;
using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.LabService;

public sealed class ModelServerHealthCheckTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static ModelServerHealthCheck CreateCheck(Uri endpoint) =>
        new(new OllamaClient(new HttpClient { BaseAddress = endpoint }, Options.Create(new OllamaOptions()),
            Options.Create(new LabOptions()), NullLogger<OllamaClient>.Instance));

    [Fact]
    public async Task CheckHealthAsync_SimulatorAnswers_HealthyWithKindVersionAndLatency()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.IsSimulator = true;

        var result = await CreateCheck(fake.BaseAddress).CheckHealthAsync(new HealthCheckContext(), ct).WaitAsync(Bound, ct);

        Assert.Equal(HealthStatus.Healthy, result.Status);
        Assert.Equal("simulator", result.Data["server_kind"]);
        Assert.Equal("0.12.3", result.Data["version"]);
        Assert.Equal(fake.BaseAddress.ToString(), result.Data["endpoint"]);
        Assert.IsType<double>(result.Data["latency_ms"]);
        Assert.Contains("SIMULATOR", result.Description);
    }

    [Fact]
    public async Task CheckHealthAsync_ServerDown_DegradedSayingWhatToDo()
    {
        var ct = TestContext.Current.CancellationToken;

        var result = await CreateCheck(FakeOllama.RefusedAddress()).CheckHealthAsync(new HealthCheckContext(), ct).WaitAsync(Bound, ct);

        Assert.Equal(HealthStatus.Degraded, result.Status);
        Assert.Contains("ollama serve", result.Description);
    }
}
