using System.Text.Json;
using AgentLab.LabService;
using AgentLab.LabService.Ollama;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.LabService;

public sealed class OllamaClientTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static OllamaClient CreateClient(Uri endpoint, OllamaOptions? options = null)
    {
        options ??= new OllamaOptions();
        var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(options.ConnectTimeoutSeconds) })
        {
            BaseAddress = endpoint,
            Timeout = Timeout.InfiniteTimeSpan,
        };
        return new OllamaClient(http, Options.Create(options), Options.Create(new LabOptions()), NullLogger<OllamaClient>.Instance);
    }

    private static List<ChatMessage> Prompt(string text = "Say hello") => [new(ChatRole.User, text)];

    private static ChatOptions Model(string model = "mistral:7b") => new() { ModelId = model };

    [Fact]
    public async Task GetResponseAsync_StreamedLines_AggregatesTextUsageAndMetrics()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var client = CreateClient(fake.BaseAddress);

        var response = await client.GetResponseAsync(Prompt(), Model(), ct).WaitAsync(Bound, ct);

        Assert.Equal("Hello world", response.Text);
        Assert.Equal("mistral:7b", response.ModelId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(169, response.Usage?.InputTokenCount);
        Assert.Equal(15, response.Usage?.OutputTokenCount);
        Assert.Equal(115959084L, response.AdditionalProperties?[OllamaMetadata.EvalDurationNs]);
        Assert.Equal(41295167L, response.AdditionalProperties?[OllamaMetadata.LoadDurationNs]);
        Assert.Equal("stop", response.AdditionalProperties?[OllamaMetadata.DoneReason]);
        Assert.True(response.AdditionalProperties?.ContainsKey(OllamaMetadata.TimeToFirstTokenMs));
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ChatOptions_AreMappedAndNumCtxAlwaysSent()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { DefaultNumCtx = 8192, KeepAlive = "-1" });
        var schema = JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"string"}}}""").RootElement;
        var options = new ChatOptions
        {
            ModelId = "llama3.2:latest",
            Temperature = 0.5f,
            MaxOutputTokens = 64,
            Seed = 42,
            TopP = 0.9f,
            StopSequences = ["END"],
            ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "answer"),
            Tools = [AIFunctionFactory.CreateDeclaration("get_weather", "Weather in a city",
                JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}}}""").RootElement)],
        };

        await client.GetResponseAsync([new(ChatRole.System, "Be brief"), new(ChatRole.User, "Hi")], options, ct).WaitAsync(Bound, ct);

        var sent = Assert.Single(fake.ChatRequests);
        Assert.Equal("llama3.2:latest", sent.GetProperty("model").GetString());
        Assert.True(sent.GetProperty("stream").GetBoolean());
        Assert.Equal(-1, sent.GetProperty("keep_alive").GetInt32());
        var o = sent.GetProperty("options");
        Assert.Equal(8192, o.GetProperty("num_ctx").GetInt32());
        Assert.Equal(64, o.GetProperty("num_predict").GetInt32());
        Assert.Equal(42, o.GetProperty("seed").GetInt64());
        Assert.Equal(0.5, o.GetProperty("temperature").GetDouble(), 3);
        Assert.Equal(0.9, o.GetProperty("top_p").GetDouble(), 3);
        Assert.Equal("END", o.GetProperty("stop")[0].GetString());
        Assert.Equal("object", sent.GetProperty("format").GetProperty("type").GetString());
        Assert.Equal("get_weather", sent.GetProperty("tools")[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("system", sent.GetProperty("messages")[0].GetProperty("role").GetString());
        Assert.Equal("Hi", sent.GetProperty("messages")[1].GetProperty("content").GetString());
    }

    [Fact]
    public async Task GetStreamingResponseAsync_NumCtxInAdditionalProperties_OverridesDefault()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var client = CreateClient(fake.BaseAddress);
        var options = new ChatOptions { ModelId = "mistral:7b", AdditionalProperties = new() { [OllamaClient.NumCtxKey] = 16384 } };

        await client.GetResponseAsync(Prompt(), options, ct).WaitAsync(Bound, ct);

        Assert.Equal(16384, Assert.Single(fake.ChatRequests).GetProperty("options").GetProperty("num_ctx").GetInt32());
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ToolCallAndThinkingLines_YieldFunctionCallAndReasoning()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
        [
            """{"model":"qwen3:4b","created_at":"2025-07-07T20:22:19.2Z","message":{"role":"assistant","content":"","thinking":"Look it up"},"done":false}""",
            """{"model":"qwen3:4b","created_at":"2025-07-07T20:22:19.3Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_k3j9x0ab","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}""",
            FakeOllama.FinalLine("qwen3:4b"),
        ]);
        var client = CreateClient(fake.BaseAddress);

        var response = await client.GetResponseAsync(Prompt(), Model("qwen3:4b"), ct).WaitAsync(Bound, ct);

        var call = Assert.Single(response.Messages[0].Contents.OfType<FunctionCallContent>());
        Assert.Equal("call_k3j9x0ab", call.CallId);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("Tokyo", ((JsonElement)call.Arguments!["city"]!).GetString());
        Assert.Equal("Look it up", Assert.Single(response.Messages[0].Contents.OfType<TextReasoningContent>()).Text);
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
    }

    [Fact]
    public async Task GetStreamingResponseAsync_ErrorLineWithStatus200_ThrowsServerExceptionWithModelMessage()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
            [FakeOllama.TokenLine("mistral:7b", "Hel"), """{"error":"an error was encountered while running the model: out of memory"}"""]);
        var client = CreateClient(fake.BaseAddress);
        var tokens = new List<string>();

        var ex = await Assert.ThrowsAsync<OllamaServerException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Prompt(), Model(), ct))
                tokens.Add(update.Text);
        }).WaitAsync(Bound, ct);

        Assert.Equal(["Hel"], tokens);
        Assert.Contains("out of memory", ex.ServerMessage);
        Assert.Contains(fake.BaseAddress.ToString(), ex.Message);
    }

    [Fact]
    public async Task GetResponseAsync_UnknownModel404_ThrowsModelNotFound()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.ErrorAsync(ctx, 404, $"model '{FakeOllama.ModelOf(body)}' not found");
        var client = CreateClient(fake.BaseAddress);

        var ex = await Assert.ThrowsAsync<OllamaModelNotFoundException>(
            () => client.GetResponseAsync(Prompt(), Model("nope:1b"), ct)).WaitAsync(Bound, ct);

        Assert.Equal("nope:1b", ex.Model);
        Assert.Equal("model 'nope:1b' not found", ex.ServerMessage);
    }

    [Fact]
    public async Task GetResponseAsync_QueueFull503_ThrowsBusyWithRetryAfter()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) =>
        {
            ctx.Response.Headers.RetryAfter = "7";
            return FakeOllama.ErrorAsync(ctx, 503, "server busy, please try again.  maximum pending requests exceeded");
        };
        var client = CreateClient(fake.BaseAddress);

        var ex = await Assert.ThrowsAsync<OllamaBusyException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.Equal(TimeSpan.FromSeconds(7), ex.RetryAfter);
        Assert.Contains("maximum pending requests", ex.ServerMessage);
    }

    [Theory]
    [InlineData(500, typeof(OllamaServerException))]
    [InlineData(400, typeof(OllamaRequestException))]
    public async Task GetResponseAsync_OtherStatus_ThrowsTypedException(int status, Type expected)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.ErrorAsync(ctx, status, "\"mistral:7b\" does not support thinking");
        var client = CreateClient(fake.BaseAddress);

        var ex = await Assert.ThrowsAnyAsync<OllamaException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.IsType(expected, ex);
        Assert.Contains("does not support thinking", ex.Message);
    }

    [Fact]
    public async Task GetResponseAsync_StreamCutWithoutDone_ThrowsServerException()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx, [FakeOllama.TokenLine("mistral:7b", "Hello")]);
        var client = CreateClient(fake.BaseAddress);

        var ex = await Assert.ThrowsAsync<OllamaServerException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.Contains("closed the stream before it finished", ex.Message);
    }

    [Fact]
    public async Task GetResponseAsync_LineThatIsNotJson_ThrowsServerException()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx, ["<html>gateway</html>"]);
        var client = CreateClient(fake.BaseAddress);

        var ex = await Assert.ThrowsAsync<OllamaServerException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.Contains("not the expected JSON", ex.Message);
    }

    [Fact]
    public async Task GetResponseAsync_StallAfterFirstToken_ThrowsIdleTimeoutAndCancelsTheRequest()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = async (ctx, body) =>
        {
            await FakeOllama.WriteLinesAsync(ctx, [FakeOllama.TokenLine("mistral:7b", "Hel")]);
            await FakeOllama.HangAsync(ctx);
        };
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { IdleTimeoutSeconds = 0.3 });

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.Equal(OllamaTimeoutPhase.Idle, ex.Phase);
        Assert.Equal(TimeSpan.FromSeconds(0.3), ex.Limit);
        Assert.Contains("0.3 s", ex.Message);
        await fake.ChatAborted.Task.WaitAsync(Bound, ct);
    }

    [Fact]
    public async Task GetResponseAsync_SlowFirstToken_ThrowsFirstTokenTimeout()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.HangAsync(ctx);
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { FirstTokenTimeoutSeconds = 0.3, IdleTimeoutSeconds = 60 });

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() => client.GetResponseAsync(Prompt(), Model(), ct)).WaitAsync(Bound, ct);

        Assert.Equal(OllamaTimeoutPhase.FirstToken, ex.Phase);
        await fake.ChatAborted.Task.WaitAsync(Bound, ct);
    }

    [Fact]
    public async Task GetResponseAsync_SteadyTokensPastTotalLimit_ThrowsTotalTimeout()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
            Enumerable.Repeat(FakeOllama.TokenLine("mistral:7b", "x"), 10_000), TimeSpan.FromMilliseconds(20));
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { IdleTimeoutSeconds = 5 });
        var options = new ChatOptions { ModelId = "mistral:7b", AdditionalProperties = new() { [OllamaClient.TimeoutSecondsKey] = 0.5 } };

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() => client.GetResponseAsync(Prompt(), options, ct)).WaitAsync(Bound, ct);

        Assert.Equal(OllamaTimeoutPhase.Total, ex.Phase);
        Assert.Equal(TimeSpan.FromSeconds(0.5), ex.Limit);
    }

    [Fact]
    public async Task GetResponseAsync_RequestAsksForMoreThanTheCeiling_IsHeldToTheCeiling()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
            Enumerable.Repeat(FakeOllama.TokenLine("mistral:7b", "x"), 10_000), TimeSpan.FromMilliseconds(20));
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { IdleTimeoutSeconds = 5, TotalTimeoutSeconds = 0.5 });
        var options = new ChatOptions { ModelId = "mistral:7b", AdditionalProperties = new() { [OllamaClient.TimeoutSecondsKey] = 3600.0 } };

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() => client.GetResponseAsync(Prompt(), options, ct)).WaitAsync(Bound, ct);

        Assert.Equal(OllamaTimeoutPhase.Total, ex.Phase);
        Assert.Equal(TimeSpan.FromSeconds(0.5), ex.Limit);
    }

    [Fact]
    public async Task PullModelAsync_ServerGoesSilent_ThrowsTimeoutInsteadOfHanging()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Pull = async ctx =>
        {
            await FakeOllama.WriteLinesAsync(ctx, ["{\"status\":\"pulling manifest\"}"]);
            await FakeOllama.HangAsync(ctx);
        };
        var client = CreateClient(fake.BaseAddress, new OllamaOptions { FirstTokenTimeoutSeconds = 0.3 });
        var statuses = new List<string?>();

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(async () =>
        {
            await foreach (var progress in client.PullModelAsync("gemma3:1b", ct))
                statuses.Add(progress.Status);
        }).WaitAsync(Bound, ct);

        Assert.Equal(["pulling manifest"], statuses);
        Assert.Equal(OllamaTimeoutPhase.Idle, ex.Phase);
    }

    [Fact]
    public async Task GetResponseAsync_CallerCancels_ThrowsOperationCanceledNotTimeout()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var streaming = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fake.Chat = async (ctx, body) =>
        {
            await FakeOllama.WriteLinesAsync(ctx, [FakeOllama.TokenLine("mistral:7b", "Hel")]);
            streaming.TrySetResult();
            await FakeOllama.HangAsync(ctx);
        };
        var client = CreateClient(fake.BaseAddress);
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(ct);

        // Cancel mid-stream, once the first token is on the wire: a timer could fire before the request reached the
        // server (a loaded CI machine), and then there is no connection whose abort the server could see.
        var call = client.GetResponseAsync(Prompt(), Model(), caller.Token);
        await streaming.Task.WaitAsync(Bound, ct);
        await caller.CancelAsync();
        var ex = await Record.ExceptionAsync(() => call.WaitAsync(Bound, ct));

        Assert.IsAssignableFrom<OperationCanceledException>(ex);
        await fake.ChatAborted.Task.WaitAsync(Bound, ct);
    }

    [Fact]
    public async Task GetResponseAsync_ConnectionRefused_ThrowsUnavailable()
    {
        var ct = TestContext.Current.CancellationToken;
        var endpoint = FakeOllama.RefusedAddress();
        var client = CreateClient(endpoint, new OllamaOptions { ConnectTimeoutSeconds = 2 });

        var ex = await Assert.ThrowsAsync<OllamaUnavailableException>(() => client.GetResponseAsync(Prompt(), Model(), ct))
            .WaitAsync(Bound, ct);

        Assert.Contains(endpoint.ToString(), ex.Message);
        Assert.Contains("ConnectionStrings:ollama", ex.Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task GetVersionAsync_SimulatorHeader_IsReported(bool simulator, bool expected)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.IsSimulator = simulator;
        var client = CreateClient(fake.BaseAddress);

        var version = await client.GetVersionAsync(ct).WaitAsync(Bound, ct);

        Assert.Equal("0.12.3", version.Version);
        Assert.Equal(expected, version.IsSimulator);
    }

    [Fact]
    public async Task TypedModelCalls_ParseTagsShowPsAndPull()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var client = CreateClient(fake.BaseAddress);

        var tags = await client.ListModelsAsync(ct).WaitAsync(Bound, ct);
        var show = await client.ShowModelAsync("mistral:7b", ct).WaitAsync(Bound, ct);
        var ps = await client.ListRunningAsync(ct).WaitAsync(Bound, ct);
        var pull = await client.PullModelAsync("mistral:7b", ct).ToListAsync(ct).AsTask().WaitAsync(Bound, ct);

        Assert.Equal(3, tags.Count);
        Assert.Equal("Q4_0", tags[0].Details?.QuantizationLevel);
        Assert.Equal(32768, show.ContextLength);
        Assert.Equal(["completion", "tools"], show.Capabilities);
        Assert.Equal("mistral:7b", Assert.Single(ps).Name);
        Assert.Equal("success", pull[^1].Status);
        Assert.Equal(241970, pull[2].Completed);
    }

    [Theory]
    [InlineData("Endpoint=http://ollama-host:11434", null, "http://ollama-host:11434/")]
    [InlineData("http://bare:1234", null, "http://bare:1234/")]
    [InlineData(null, "http://from-options:9999", "http://from-options:9999/")]
    [InlineData(null, null, "http://localhost:11434/")]
    public void ResolveEndpoint_ConfigurationForms_PicksInOrder(string? connectionString, string? endpoint, string expected)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:ollama"] = connectionString,
            ["Ollama:Endpoint"] = endpoint,
        }).Build();

        var uri = OllamaOptions.ResolveEndpoint(config);

        Assert.Equal(expected, uri.ToString());
    }
}
