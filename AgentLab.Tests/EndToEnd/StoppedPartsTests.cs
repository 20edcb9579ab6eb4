using System.Net;
using System.Text;

namespace AgentLab.Tests.EndToEnd;

/// <summary>The Backend's answers when a part of the stack behind it stops. Each test stops parts of its own stack.</summary>
public sealed class StoppedPartsTests
{
    private const string Request = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // LabService then holds a fresh model list, so only the model call finds the server gone
    public async Task Execute_SimulatorStopped_Returns503ModelUnavailableWithRetryAfter(bool modelsListedBefore)
    {
        await using var stack = new LabStack();
        await stack.InitializeAsync();
        if (modelsListedBefore)
        {
            using var warm = await PostExecuteAsync(stack);
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }
        await stack.StopSimulatorAsync();

        using var response = await PostExecuteAsync(stack);
        var problem = await SimplePathTests.JsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Execute_LabServiceStopped_Returns503LabUnavailableWithRetryAfter()
    {
        await using var stack = new LabStack();
        await stack.InitializeAsync();
        await stack.StopLabServiceAsync();

        using var response = await PostExecuteAsync(stack);
        var problem = await SimplePathTests.JsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("lab_unavailable", problem.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Matches("^[0-9a-f]{32}$", problem.GetProperty("trace_id").GetString());
    }

    [Fact]
    public async Task DetailedHealth_SimulatorStopped_ReportsModelServerNotHealthy()
    {
        await using var stack = new LabStack();
        await stack.InitializeAsync();
        await stack.StopSimulatorAsync();

        using var response = await stack.Backend.GetAsync("api/v1/health/detailed", Ct).WaitAsync(LabStack.Bound, Ct);
        var body = await SimplePathTests.JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(body.GetProperty("status").GetString(), new[] { "degraded", "unhealthy" });
        Assert.Equal("healthy", body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString());
        Assert.NotEqual("healthy", body.GetProperty("components").GetProperty("model_server").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Models_SimulatorStopped_Returns503ModelUnavailableWithRetryAfter()
    {
        await using var stack = new LabStack();
        await stack.InitializeAsync();
        await stack.StopSimulatorAsync();

        // Bounded well below the read's own 30 s limits: LabService's 503 must come back, not a timeout.
        using var response = await stack.Backend.GetAsync("api/v1/models", Ct).WaitAsync(LabStack.Bound, Ct);
        var problem = await SimplePathTests.JsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Ready_LabServiceStopped_Returns503NotReady()
    {
        await using var stack = new LabStack();
        await stack.InitializeAsync();
        await stack.StopLabServiceAsync();

        using var response = await stack.Backend.GetAsync("api/v1/ready", Ct).WaitAsync(LabStack.Bound, Ct);
        var problem = await SimplePathTests.JsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("not_ready", problem.GetProperty("code").GetString());
    }

    private static async Task<HttpResponseMessage> PostExecuteAsync(LabStack stack)
    {
        using var content = new StringContent(Request, Encoding.UTF8, "application/json");
        return await stack.Backend.PostAsync("api/v1/execute", content, Ct).WaitAsync(LabStack.Bound, Ct);
    }
}
