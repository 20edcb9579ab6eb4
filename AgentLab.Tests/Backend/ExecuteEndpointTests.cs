using System.Net;
using System.Text.Json;

namespace AgentLab.Tests.Backend;

public sealed class ExecuteEndpointTests : BackendTestBase
{
    private const string SimpleBody = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";

    [Fact]
    public async Task Execute_SimplePrompt_AnswersResultWithFlowAndMetrics()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, SimpleBody);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await JsonAsync(response);
        var id = Guid.Parse(body.GetProperty("execution_id").GetString()!);
        Assert.Equal(7, id.Version);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("simple", body.GetProperty("execution_type").GetString());
        Assert.Equal("mistral:7b", body.GetProperty("model").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        Assert.Equal("2, 3 y 5", body.GetProperty("output").GetString());
        Assert.False(body.TryGetProperty("error", out _));
        Assert.Equal($"/api/v1/executions/{id}", body.GetProperty("links").GetProperty("self").GetString());
        Assert.Equal(1, body.GetProperty("attempt").GetInt32());
        Assert.True(body.GetProperty("completed_at").GetDateTimeOffset() >= body.GetProperty("created_at").GetDateTimeOffset());

        var flow = body.GetProperty("flow");
        Assert.Equal(1, flow.GetProperty("iterations").GetInt32());
        Assert.Empty(flow.GetProperty("edges").EnumerateArray());
        var node = Assert.Single(flow.GetProperty("nodes").EnumerateArray());
        Assert.Equal("inference", node.GetProperty("name").GetString());
        Assert.Equal("completed", node.GetProperty("status").GetString());
        Assert.Equal(1, node.GetProperty("attempt").GetInt32());
        Assert.Equal("2, 3 y 5", node.GetProperty("output").GetString());
        Assert.True(node.GetProperty("duration_ms").GetDouble() >= 0);
        Assert.Equal(7, node.GetProperty("metrics").GetProperty("completion_tokens").GetInt32());
        _ = node.GetProperty("started_at").GetDateTimeOffset();
        _ = node.GetProperty("ended_at").GetDateTimeOffset();

        var metrics = body.GetProperty("metrics");
        Assert.True(metrics.GetProperty("total_duration_ms").GetDouble() > 0);
        Assert.Equal(12.25, metrics.GetProperty("time_to_first_token_ms").GetDouble());
        Assert.Equal(3.5, metrics.GetProperty("load_duration_ms").GetDouble());
        Assert.Equal(11, metrics.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(7, metrics.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(70, metrics.GetProperty("tokens_per_second").GetDouble());
        Assert.Equal(1, metrics.GetProperty("model_calls").GetInt32());
    }

    [Fact]
    public async Task Execute_WithParameters_SendsLabServiceContract()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, """
            {"prompt":"p","parameters":{"system":"be brief","temperature":0.2,"max_tokens":16,"seed":3,"timeout_seconds":60}}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(Lab.Received, r => r.Path == "/inference/");
        var json = JsonDocument.Parse(sent.Body).RootElement;
        Assert.Equal("p", json.GetProperty("prompt").GetString());
        Assert.Equal("be brief", json.GetProperty("system").GetString());
        Assert.False(json.TryGetProperty("model", out _));           // left out: LabService applies its default
        var parameters = json.GetProperty("parameters");
        Assert.Equal(0.2, parameters.GetProperty("temperature").GetDouble());
        Assert.Equal(16, parameters.GetProperty("max_tokens").GetInt32());
        Assert.Equal(60, parameters.GetProperty("timeout_seconds").GetInt32());
        Assert.False(parameters.TryGetProperty("system", out _));
        Assert.False(parameters.TryGetProperty("num_ctx", out _));
    }

    [Fact]
    public async Task Execute_Success_PropagatesExecutionIdAsBaggage()
    {
        var client = Backend();

        var body = await JsonAsync(await PostJsonAsync(client, SimpleBody));

        var sent = Assert.Single(Lab.Received, r => r.Path == "/inference/");
        Assert.Contains("agentlab.execution_id=" + body.GetProperty("execution_id").GetString(),
            (sent.Baggage ?? "").Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"prompt": "Dime", "model": }""", "invalid_json")]
    [InlineData("""{"prompt": 5}""", "invalid_json")]
    [InlineData("""{"prompt": "p", "parameters": "x"}""", "invalid_json")]
    [InlineData("""{"model": "mistral7b"}""", "validation_failed")]
    [InlineData("""{"prompt": "   "}""", "validation_failed")]
    [InlineData("""{"prompt": "a\u0000b"}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "execution_type": "swarm"}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "mode": "fire-and-forget"}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "parameters": {"temperature": 3}}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "parameters": {"max_tokens": 0}}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "parameters": {"num_ctx": 0}}""", "validation_failed")]
    [InlineData("""{"prompt": "p", "parameters": {"timeout_seconds": 4000}}""", "validation_failed")]
    public async Task Execute_BadInput_BadRequestWithCodeAndNoLabCall(string json, string code)
    {
        var client = Backend();

        var response = await PostJsonAsync(client, json);

        await AssertProblemAsync(response, 400, code);
        Assert.Empty(Lab.Received);
    }

    [Fact]
    public async Task Execute_MissingPrompt_ErrorsNamePrompt()
    {
        var client = Backend();

        var body = await AssertProblemAsync(await PostJsonAsync(client, "{}"), 400, "validation_failed");

        Assert.True(body.GetProperty("errors").TryGetProperty("prompt", out _));
    }

    [Fact]
    public async Task Execute_PromptOverConfiguredLimit_ValidationFailed()
    {
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxPromptLength"] = "10" });

        var response = await PostJsonAsync(client, """{"prompt": "eleven chars"}""");

        await AssertProblemAsync(response, 400, "validation_failed");
    }

    [Fact]
    public async Task Execute_PromptOverDefaultLimit_ValidationFailed()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, $$"""{"prompt": "{{new string('x', 32_001)}}"}""");

        await AssertProblemAsync(response, 400, "validation_failed");
    }

    [Fact]
    public async Task Execute_BodyOverLimit_PayloadTooLarge()
    {
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxRequestBodyBytes"] = "2048" });

        var response = await PostJsonAsync(client, $$"""{"prompt": "{{new string('x', 5000)}}"}""");

        await AssertProblemAsync(response, 413, "payload_too_large");
    }

    [Fact]
    public async Task Execute_TextPlain_UnsupportedMediaType()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, SimpleBody, "text/plain");

        await AssertProblemAsync(response, 415, "unsupported_media_type");
    }

    [Fact]
    public async Task Execute_UnknownModel_PassesModelNotFoundThrough()
    {
        Lab.Inference = FakeLabService.Problem(404, "model_not_found", "Model not found",
            "The model 'mistral8b' is not installed.", "\"close_matches\":[\"mistral:7b\",\"mistral7b\"]");
        var client = Backend();

        var response = await PostJsonAsync(client, """{"prompt": "p", "model": "mistral8b"}""");

        var body = await AssertProblemAsync(response, 404, "model_not_found");
        Assert.Equal("The model 'mistral8b' is not installed.", body.GetProperty("detail").GetString());
        Assert.Equal(["mistral:7b", "mistral7b"], body.GetProperty("close_matches").EnumerateArray().Select(e => e.GetString()));
        Assert.True(Guid.TryParse(body.GetProperty("execution_id").GetString(), out _));
        Assert.NotEqual("lab-trace", body.GetProperty("trace_id").GetString());
    }

    [Fact]
    public async Task Execute_ModelUnavailable_PassesThroughWithRetryAfter()
    {
        Lab.Inference = FakeLabService.Problem(503, "model_unavailable", "Model server unavailable", "Ollama is loading.", retryAfter: "17");
        var client = Backend();

        var response = await PostJsonAsync(client, SimpleBody);

        await AssertProblemAsync(response, 503, "model_unavailable");
        Assert.Equal(TimeSpan.FromSeconds(17), response.Headers.RetryAfter?.Delta);
    }

    [Theory]
    [InlineData(502, "model_error", "model crashed: out of memory")]
    [InlineData(504, "model_timeout", "no token within 30 s")]
    public async Task Execute_ModelFailure_PassesThroughWithDetail(int status, string code, string detail)
    {
        Lab.Inference = FakeLabService.Problem(status, code, "Model failure", detail);
        var client = Backend();

        var body = await AssertProblemAsync(await PostJsonAsync(client, SimpleBody), status, code);

        Assert.Equal(detail, body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Execute_LabServiceAnswersHtml500_BadGatewayLabError()
    {
        Lab.Inference = FakeLabService.Json(500, "<html>oops</html>", "text/html");
        var client = Backend();

        var response = await PostJsonAsync(client, SimpleBody);

        await AssertProblemAsync(response, 502, "lab_error");
    }

    [Fact]
    public async Task Execute_LabServiceDown_ServiceUnavailableWithRetryAfter()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await PostJsonAsync(client, SimpleBody);

        var body = await AssertProblemAsync(response, 503, "lab_unavailable");
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Contains("LabService", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(Guid.TryParse(body.GetProperty("execution_id").GetString(), out _));
    }

    [Fact]
    public async Task Execute_LabServiceNameWithoutEndpoint_ServiceUnavailableNamingTheSetting()
    {
        // The default LabService:BaseAddress, with no services__labservice__http__0: the Backend run on its own.
        var client = Backend(labAddress: new Uri("http://labservice"));

        var response = await PostJsonAsync(client, SimpleBody);

        var body = await AssertProblemAsync(response, 503, "lab_unavailable");
        Assert.Contains("services__labservice__http__0", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_LabServiceTooSlow_GatewayTimeout()
    {
        Lab.Inference = FakeLabService.Hang;
        var client = Backend(new Dictionary<string, string?> { ["LabService:TimeoutGraceSeconds"] = "0" });

        var response = await PostJsonAsync(client, """{"prompt": "p", "parameters": {"timeout_seconds": 1}}""");

        await AssertProblemAsync(response, 504, "lab_timeout");
    }

    [Fact]
    public async Task Execute_ClientDisconnects_CancelsLabServiceCall()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Lab.Inference = async ctx =>
        {
            ctx.RequestAborted.Register(() => aborted.TrySetResult());
            received.TrySetResult();
            await FakeLabService.Hang(ctx);
        };
        var client = Backend();
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var content = new StringContent(SimpleBody, System.Text.Encoding.UTF8, "application/json");

        var call = client.PostAsync("/api/v1/execute", content, caller.Token);
        await received.Task.WaitAsync(Bound, Ct);
        await caller.CancelAsync();

        await aborted.Task.WaitAsync(Bound, Ct);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task Execute_ErrorForAllowedOrigin_CarriesCorsHeaders()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent(SimpleBody, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Origin", "http://localhost:3000");

        var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("http://localhost:3000", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }
}
