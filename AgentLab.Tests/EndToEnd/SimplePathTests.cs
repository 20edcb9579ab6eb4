using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.ModelSimulator;
using AgentLab.ServiceDefaults;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// The Backend's HTTP API over a real LabService and the simulator: a request travels Backend → LabService →
/// simulator on real sockets, and everything the caller sees (result, errors, models, health) comes from the real hops.
/// </summary>
public sealed class SimplePathTests(LabStack stack) : IClassFixture<LabStack>
{
    private const string Prompt = "Dime 3 números primos";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Execute_AliasOverRealStack_ReturnsCompletedResultWithSimulatorOutputAndMetrics()
    {
        var expectedOutput = await SimulatorOutputAsync("mistral:7b", Prompt);

        using var response = await PostExecuteAsync("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");
        var body = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        foreach (var field in new[] { "execution_id", "status", "execution_type", "model", "model_server", "output", "flow", "metrics", "created_at", "completed_at", "links" })
            Assert.True(body.TryGetProperty(field, out _), $"the result has no '{field}': {body}");
        Assert.False(body.TryGetProperty("ExecutionId", out _));
        Assert.Equal(7, Guid.Parse(body.GetProperty("execution_id").GetString()!).Version);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("simple", body.GetProperty("execution_type").GetString());
        Assert.Equal("mistral:7b", body.GetProperty("model").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        Assert.False(string.IsNullOrEmpty(expectedOutput));
        Assert.Equal(expectedOutput, body.GetProperty("output").GetString());

        var node = body.GetProperty("flow").GetProperty("nodes")[0];
        Assert.Equal("inference", node.GetProperty("name").GetString());
        Assert.Equal("completed", node.GetProperty("status").GetString());

        var metrics = body.GetProperty("metrics");
        Assert.True(metrics.GetProperty("time_to_first_token_ms").GetDouble() > 0);
        Assert.True(metrics.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.True(metrics.GetProperty("completion_tokens").GetInt32() > 0);
        Assert.True(metrics.GetProperty("tokens_per_second").GetDouble() > 0);
        Assert.Equal(1, metrics.GetProperty("model_calls").GetInt32());
        var labWallMs = node.GetProperty("metrics").GetProperty("wall_duration_ms").GetDouble();
        Assert.True(metrics.GetProperty("total_duration_ms").GetDouble() >= labWallMs,
            $"the Backend's total ({metrics.GetProperty("total_duration_ms")} ms) is shorter than LabService's wall time ({labWallMs} ms)");
    }

    [Theory]
    [InlineData("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""")]
    [InlineData("""{"model": "mistral7b"}""")]
    public async Task Execute_CallerSendsExecutionIdBaggage_IsIgnoredAndOursReachesLabService(string json)
    {
        using var spans = new SpanRecorder();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        // ASP.NET Core accepts incoming baggage when a traceparent comes with it.
        request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        request.Headers.Add("baggage", $"{AgentLabExecution.ExecutionIdKey}=forged-by-caller,{AgentLabExecution.ExecutionTypeKey}=forged-type");

        using var response = await stack.Backend.SendAsync(request, Ct).WaitAsync(LabStack.Bound, Ct);
        var raw = await response.Content.ReadAsStringAsync(Ct);

        Assert.DoesNotContain("forged-by-caller", raw, StringComparison.Ordinal);
        Assert.DoesNotContain(spans.Spans, a => a.GetTagItem(AgentLabExecution.ExecutionIdKey) as string == "forged-by-caller");
        Assert.DoesNotContain(spans.Spans, a => a.GetTagItem(AgentLabExecution.ExecutionTypeKey) as string == "forged-type");
        if (response.StatusCode == HttpStatusCode.OK)
        {
            var id = JsonDocument.Parse(raw).RootElement.GetProperty("execution_id").GetString()!;
            var labSpan = await SpanRecorder.WaitForAsync(() => spans.ServerSpan("/inference/", id), "LabService's inference request");
            Assert.Equal(id, labSpan.GetBaggageItem(AgentLabExecution.ExecutionIdKey));
            Assert.Equal("simple", labSpan.GetBaggageItem(AgentLabExecution.ExecutionTypeKey));
        }
        else
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    [Fact]
    public async Task Execute_Async_BackgroundRunContinuesTheSubmittersTraceDownToLabService()
    {
        using var spans = new SpanRecorder();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent("""{"prompt": "Dime 3 números primos", "model": "mistral7b", "mode": "async"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");

        using var response = await stack.Backend.SendAsync(request, Ct).WaitAsync(LabStack.Bound, Ct);
        var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("execution_id").GetString()!;
        var labSpan = await SpanRecorder.WaitForAsync(() => spans.ServerSpan("/inference/", id), "LabService's inference request");
        var run = await SpanRecorder.WaitForAsync(() => spans.Spans.FirstOrDefault(a => a.OperationName == "execution.run"
            && a.GetTagItem(AgentLabExecution.ExecutionIdKey) as string == id), "the background run");

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("4bf92f3577b34da6a3ce929d0e0e4736", run.TraceId.ToHexString());
        Assert.Equal(run.TraceId, labSpan.TraceId);
        Assert.Equal(id, labSpan.GetBaggageItem(AgentLabExecution.ExecutionIdKey));
    }

    [Fact]
    public async Task Execute_SpanishPrompt_AnswersReadableUtf8NotEscapes()
    {
        var expectedOutput = await SimulatorOutputAsync("mistral:7b", Prompt);

        using var response = await PostExecuteAsync("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");
        var raw = await response.Content.ReadAsStringAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("ú", expectedOutput, StringComparison.Ordinal);
        Assert.Contains(expectedOutput, raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u00", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_OverRealStack_ExecutionIdReachesLabServiceSpansAndLogsInOneTrace()
    {
        using var spans = new SpanRecorder();

        using var response = await PostExecuteAsync("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""");
        var id = (await JsonAsync(response)).GetProperty("execution_id").GetString()!;
        var backendSpan = await SpanRecorder.WaitForAsync(() => spans.ServerSpan("/api/v1/execute", id), "the Backend's execute request");
        var traceId = backendSpan.TraceId;
        var labSpan = await SpanRecorder.WaitForAsync(() => spans.ServerSpan("/inference/", id), "LabService's inference request");
        var chatSpan = await SpanRecorder.WaitForAsync(() => spans.Spans.FirstOrDefault(a =>
            a.TraceId == traceId && a.Source.Name == "AgentLab.LabService" && a.DisplayName == "chat mistral:7b"), "the chat span");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(traceId, labSpan.TraceId);
        Assert.Equal(id, chatSpan.GetTagItem(AgentLabExecution.ExecutionIdKey) as string);
        Assert.Equal(id, labSpan.GetBaggageItem(AgentLabExecution.ExecutionIdKey));
        // One trace: no span of this execution (in any process part) lives in another trace.
        Assert.All(spans.Spans.Where(a => a.GetTagItem(AgentLabExecution.ExecutionIdKey) as string == id),
            a => Assert.Equal(traceId, a.TraceId));
        Assert.Contains(stack.LabLogs.Entries, e => e.Category.StartsWith("AgentLab.LabService", StringComparison.Ordinal)
            && e.Scope.TryGetValue(AgentLabExecution.ExecutionIdKey, out var scoped) && scoped as string == id);
    }

    [Fact]
    public async Task Execute_Orchestrator_TraceReadsNodeByNodeWithEachModelCallUnderItsNode()
    {
        using var spans = new SpanRecorder();

        using var response = await PostExecuteAsync("""{"prompt": "Plan a small garden", "model": "mistral7b", "execution_type": "orchestrator"}""");
        var body = await JsonAsync(response);
        var id = body.GetProperty("execution_id").GetString()!;
        var backendSpan = await SpanRecorder.WaitForAsync(() => spans.ServerSpan("/api/v1/execute", id), "the Backend's execute request");
        var traceId = backendSpan.TraceId;
        var inTrace = spans.Spans.Where(a => a.TraceId == traceId).ToList();
        var nodes = inTrace.Where(a => a.Source.Name == "AgentLab.LabService" && a.OperationName.StartsWith("node ", StringComparison.Ordinal)).ToList();
        var chats = inTrace.Where(a => a.Source.Name == "AgentLab.LabService" && a.DisplayName.StartsWith("chat ", StringComparison.Ordinal)).ToList();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        var ran = body.GetProperty("flow").GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString()).ToList();
        Assert.Equal(ran, nodes.OrderBy(n => n.StartTimeUtc).Select(n => n.GetTagItem(AgentLabExecution.NodeKey) as string));
        Assert.Contains("analyzer", ran);
        Assert.NotEmpty(chats);
        Assert.All(chats, chat =>
        {
            var node = Assert.Single(nodes, n => n.SpanId == chat.ParentSpanId);
            Assert.Equal(node.GetTagItem(AgentLabExecution.NodeKey), chat.GetTagItem(AgentLabExecution.NodeKey));
        });
        Assert.All(nodes.Concat(chats).Append(backendSpan), span =>
        {
            Assert.Equal(id, span.GetTagItem(AgentLabExecution.ExecutionIdKey));
            Assert.Equal("orchestrator", span.GetTagItem(AgentLabExecution.ExecutionTypeKey));
        });
    }

    [Fact]
    public async Task Execute_MisspelledModel_Returns404ModelNotFoundWithCloseMatches()
    {
        using var response = await PostExecuteAsync("""{"prompt": "Dime 3 números primos", "model": "mistrl7b"}""");
        var problem = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", problem.GetProperty("code").GetString());
        Assert.Contains("mistral7b", problem.GetProperty("detail").GetString());
        Assert.Contains("mistral7b", problem.GetProperty("close_matches").EnumerateArray().Select(m => m.GetString()));
        Assert.Matches("^[0-9a-f]{32}$", problem.GetProperty("trace_id").GetString());
    }

    [Fact]
    public async Task Execute_ModelFailsMidStream_Returns502ModelErrorWithSimulatorMessage()
    {
        using var response = await PostExecuteAsync(Body(LabStack.BrokenModel));
        var problem = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("model_error", problem.GetProperty("code").GetString());
        Assert.Contains(Fault.MidStreamMessage, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Execute_ModelServerQueueFull_Returns503ModelUnavailableWithRetryAfter()
    {
        using var response = await PostExecuteAsync(Body(LabStack.BusyModel));
        var problem = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Execute_ModelStallsMidStream_Returns504ModelTimeout()
    {
        using var response = await PostExecuteAsync(Body(LabStack.StuckModel));
        var problem = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("model_timeout", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Models_OverRealStack_ListsSimulatorModelsWithAliasesAndCapabilities()
    {
        using var response = await stack.Backend.GetAsync("api/v1/models", Ct).WaitAsync(LabStack.Bound, Ct);
        var body = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var models = body.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Contains(LabStack.BrokenModel, models.Keys);
        var mistral = models["mistral:7b"];
        Assert.Contains("mistral7b", mistral.GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
        Assert.Contains("completion", mistral.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Contains("embedding", models["nomic-embed-text:latest"].GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
    }

    [Fact]
    public async Task DetailedHealth_AllPartsRunning_ReportsLabAndSimulatorHealthy()
    {
        using var response = await stack.Backend.GetAsync("api/v1/health/detailed", Ct).WaitAsync(LabStack.Bound, Ct);
        var body = await JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        Assert.Equal("healthy", body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString());
        Assert.Equal("healthy", body.GetProperty("components").GetProperty("model_server").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Ready_AllPartsRunning_Returns200()
    {
        using var response = await stack.Backend.GetAsync("api/v1/ready", Ct).WaitAsync(LabStack.Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Execute_ClientDisconnectsDuringGeneration_AbortsModelCallAtSimulator()
    {
        var before = stack.Simulator.Stats;
        using var leave = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var request = SendExecuteAsync(Body(LabStack.SlowModel), leave.Token);
        await WaitUntilAsync(() => stack.Simulator.Stats.GenerationRequests > before.GenerationRequests, "the generation to start at the simulator");

        await leave.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.WaitAsync(LabStack.Bound, Ct));
        await WaitUntilAsync(() => stack.Simulator.Stats.AbortedRequests > before.AbortedRequests, "the simulator to see the call aborted");
        Assert.Equal(0, stack.Simulator.Stats.InFlight);
    }

    private static string Body(string model) =>
        $$"""{"prompt": {{JsonSerializer.Serialize(Prompt)}}, "model": "{{model}}"}""";

    private Task<HttpResponseMessage> PostExecuteAsync(string json) => SendExecuteAsync(json, Ct);

    private async Task<HttpResponseMessage> SendExecuteAsync(string json, CancellationToken ct)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        return await stack.Backend.PostAsync("api/v1/execute", content, ct).WaitAsync(LabStack.Bound, Ct);
    }

    /// <summary>What the simulator itself answers for the chat LabService sends for <paramref name="prompt"/>.</summary>
    private async Task<string> SimulatorOutputAsync(string model, string prompt)
    {
        using var http = new HttpClient { BaseAddress = stack.Simulator.BaseAddress };
        var chat = $$"""{"model":"{{model}}","messages":[{"role":"user","content":{{JsonSerializer.Serialize(prompt)}}}],"stream":false}""";
        using var content = new StringContent(chat, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("api/chat", content, Ct).WaitAsync(LabStack.Bound, Ct);
        return (await JsonAsync(response)).GetProperty("message").GetProperty("content").GetString()!;
    }

    internal static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(LabStack.Bound, Ct);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.Elapsed > LabStack.Bound)
                Assert.Fail($"Gave up waiting for {what} after {LabStack.Bound.TotalSeconds} s.");
            await Task.Delay(20, Ct);
        }
    }
}
