using System.Text.Json;
using AgentLab.LabService;
using AgentLab.LabService.Ollama;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SimulatorFault = AgentLab.ModelSimulator.Fault;

namespace AgentLab.Tests.Protocol;

/// <summary>
/// What LabService's <see cref="OllamaClient"/> expects of an Ollama-protocol server, as client-level assertions.
/// Derived classes run the same assertions against a server at <see cref="BaseAddress"/> (the simulator in-process,
/// the standalone simulator process; a real Ollama could be added the same way). The server must use the
/// latencies of <see cref="SimulatorArgs"/> and serve the simulator's default models.
/// </summary>
public abstract class OllamaClientContract
{
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>Fast settings for the server under test (command-line form, so a separate process can take them).</summary>
    public static readonly string[] SimulatorArgs =
    [
        "--Simulator:TokenLatencyMs=1",
        "--Simulator:TimeToFirstTokenMs=0",
        "--Simulator:LoadDurationMs=0",
        "--Simulator:PullStepDelayMs=0",
    ];

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The server under test, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    protected abstract Uri BaseAddress { get; }

    /// <summary>
    /// An OllamaClient built as LabService builds it (Extensions.AddLabServices: infinite HttpClient.Timeout, connect
    /// timeout on the handler), plus an optional <c>X-Simulator-Fault</c> header on every request.
    /// </summary>
    protected OllamaClient CreateClient(string? fault = null, OllamaOptions? options = null)
    {
        options ??= new OllamaOptions();
        HttpMessageHandler handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(options.ConnectTimeoutSeconds),
            UseProxy = false,
        };
        if (fault is not null)
            handler = new FaultHeaderHandler(fault) { InnerHandler = handler };
        var http = new HttpClient(handler) { BaseAddress = BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        return new OllamaClient(http, Options.Create(options), Options.Create(new LabOptions()), NullLogger<OllamaClient>.Instance);
    }

    private static List<ChatMessage> Prompt(string text) => [new(ChatRole.User, text)];

    [Fact]
    public async Task Streaming_Prompt_YieldsTextUpdatesThenFinalUsage()
    {
        var client = CreateClient();

        var updates = await client.GetStreamingResponseAsync(Prompt("Dime 3 números primos"), new ChatOptions { ModelId = "mistral:7b" }, Ct)
            .ToListAsync(Ct).AsTask().WaitAsync(Bound, Ct);

        Assert.True(updates.Count > 2);
        Assert.All(updates, u => Assert.Equal("mistral:7b", u.ModelId));
        Assert.All(updates[..^1], u => Assert.Null(u.FinishReason));
        var final = updates[^1];
        Assert.Equal(ChatFinishReason.Stop, final.FinishReason);
        var usage = Assert.Single(final.Contents.OfType<UsageContent>()).Details;
        Assert.True(usage.InputTokenCount > 0);
        // One text line per generated token, so the usage counts exactly the streamed text updates.
        Assert.Equal(updates.Count(u => u.Text.Length > 0), usage.OutputTokenCount);
        Assert.Equal(usage.InputTokenCount + usage.OutputTokenCount, usage.TotalTokenCount);
        Assert.Equal(usage.OutputTokenCount * 1_000_000L, final.AdditionalProperties?[OllamaMetadata.EvalDurationNs]);
        Assert.False(string.IsNullOrWhiteSpace(string.Concat(updates.Select(u => u.Text))));
    }

    [Fact]
    public async Task GetResponse_Prompt_AggregatesTheStreamDeterministically()
    {
        var client = CreateClient();
        var options = new ChatOptions { ModelId = "llama3.2:latest", Seed = 3 };

        var response = await client.GetResponseAsync(Prompt("How do I keep a sourdough starter alive?"), options, Ct).WaitAsync(Bound, Ct);
        var streamed = await client.GetStreamingResponseAsync(Prompt("How do I keep a sourdough starter alive?"), options, Ct)
            .ToListAsync(Ct).AsTask().WaitAsync(Bound, Ct);

        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.Equal(string.Concat(streamed.Select(u => u.Text)), response.Text);
        Assert.Equal("llama3.2:latest", response.ModelId);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.True(response.Usage?.OutputTokenCount > 0);
        Assert.Equal("stop", response.AdditionalProperties?[OllamaMetadata.DoneReason]);
    }

    [Fact]
    public async Task GetResponse_MaxOutputTokens_FinishReasonLength()
    {
        var client = CreateClient();

        var response = await client.GetResponseAsync(Prompt("Write a long essay about rivers"),
            new ChatOptions { ModelId = "mistral:7b", MaxOutputTokens = 4 }, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(4, response.Usage?.OutputTokenCount);
    }

    [Fact]
    public async Task GetResponse_JsonSchemaFormat_TextIsJsonMatchingTheSchema()
    {
        var client = CreateClient();
        var schema = JsonDocument.Parse("""
            {"type":"object","properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":0},
             "tags":{"type":"array","items":{"type":"string"},"minItems":1,"maxItems":3}},
             "required":["city","population","tags"]}
            """).RootElement;
        var options = new ChatOptions { ModelId = "mistral:7b", ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "city") };

        var response = await client.GetResponseAsync(Prompt("Describe Lisbon"), options, Ct).WaitAsync(Bound, Ct);

        using var json = JsonDocument.Parse(response.Text);
        Assert.Null(AgentLab.Tests.ModelSimulator.SimulatorTestKit.Violation(json.RootElement, schema));
        Assert.Equal(JsonValueKind.Number, json.RootElement.GetProperty("population").ValueKind);
    }

    [Fact]
    public async Task GetResponse_Tools_ReturnsFunctionCallWithObjectArguments()
    {
        var client = CreateClient();
        var tool = AIFunctionFactory.CreateDeclaration("get_weather", "Current weather in a city",
            JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""").RootElement);

        var response = await client.GetResponseAsync(Prompt("What is the weather in Tokyo?"),
            new ChatOptions { ModelId = "mistral:7b", Tools = [tool] }, Ct).WaitAsync(Bound, Ct);

        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("get_weather", call.Name);
        Assert.StartsWith("call_", call.CallId);
        Assert.NotNull(call.Arguments);
        Assert.True(call.Arguments.ContainsKey("city"));
        Assert.Equal(ChatFinishReason.ToolCalls, response.FinishReason);
    }

    [Fact]
    public async Task GetResponse_ToolResultTurn_AnswersWithTextNotAnotherCall()
    {
        var client = CreateClient();
        var tool = AIFunctionFactory.CreateDeclaration("get_weather", "Current weather in a city",
            JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""").RootElement);
        var options = new ChatOptions { ModelId = "mistral:7b", Tools = [tool] };
        List<ChatMessage> conversation = Prompt("What is the weather in Tokyo?");
        var first = await client.GetResponseAsync(conversation, options, Ct).WaitAsync(Bound, Ct);
        var call = first.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        conversation.AddRange(first.Messages);
        conversation.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, """{"temperature_c":21,"sky":"clear"}""")]));

        var second = await client.GetResponseAsync(conversation, options, Ct).WaitAsync(Bound, Ct);

        Assert.Empty(second.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.False(string.IsNullOrWhiteSpace(second.Text));
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
    }

    [Fact]
    public async Task GetResponse_ToolResultAsObject_ReachesTheModelAsTheSameJsonAsText()
    {
        var client = CreateClient();
        var options = new ChatOptions { ModelId = "mistral:7b" };
        List<ChatMessage> Turn(object result) =>
        [
            new(ChatRole.User, "What is the weather in Tokyo?"),
            new(ChatRole.Assistant, [new FunctionCallContent("call_abc12345", "get_weather", new Dictionary<string, object?> { ["city"] = "Tokyo" })]),
            new(ChatRole.Tool, [new FunctionResultContent("call_abc12345", result)]),
        ];

        var asText = await client.GetResponseAsync(Turn("""{"temperature_c":21,"sky":"clear"}"""), options, Ct).WaitAsync(Bound, Ct);
        var asObject = await client.GetResponseAsync(Turn(new Dictionary<string, object?> { ["temperature_c"] = 21, ["sky"] = "clear" }), options, Ct)
            .WaitAsync(Bound, Ct);

        // The reply and the prompt size depend on the exact text the model received.
        Assert.Equal(asText.Usage?.InputTokenCount, asObject.Usage?.InputTokenCount);
        Assert.Equal(asText.Text, asObject.Text);
    }

    [Fact]
    public async Task GetResponse_JsonFormat_TextIsAJsonObject()
    {
        var client = CreateClient();

        var response = await client.GetResponseAsync(Prompt("Summarise the water cycle"),
            new ChatOptions { ModelId = "mistral:7b", ResponseFormat = ChatResponseFormat.Json }, Ct).WaitAsync(Bound, Ct);

        using var json = JsonDocument.Parse(response.Text);
        Assert.Equal(JsonValueKind.Object, json.RootElement.ValueKind);
    }

    [Fact]
    public async Task GetResponse_ThinkingModel_ReturnsReasoningApartFromTheAnswer()
    {
        var client = CreateClient();

        var response = await client.GetResponseAsync(Prompt("Why is the sky blue?"), new ChatOptions { ModelId = "qwen3:4b" }, Ct)
            .WaitAsync(Bound, Ct);

        var contents = response.Messages.SelectMany(m => m.Contents).ToList();
        var reasoning = Assert.Single(contents.OfType<TextReasoningContent>());
        Assert.False(string.IsNullOrWhiteSpace(reasoning.Text));
        Assert.False(string.IsNullOrWhiteSpace(response.Text));
        Assert.DoesNotContain(reasoning.Text, response.Text);
    }

    [Fact]
    public async Task GetResponse_KeepAliveZero_UnloadsTheModelAfterwards()
    {
        var client = CreateClient();
        var options = new ChatOptions { ModelId = "llama3.2:latest", AdditionalProperties = new() { [OllamaClient.KeepAliveKey] = "0" } };

        await client.GetResponseAsync(Prompt("Hi"), options, Ct).WaitAsync(Bound, Ct);
        var running = await client.ListRunningAsync(Ct).WaitAsync(Bound, Ct);

        Assert.DoesNotContain(running, m => m.Name == "llama3.2:latest");
    }

    [Fact]
    public async Task GetResponse_UnknownModel_ThrowsModelNotFound()
    {
        var client = CreateClient();

        var ex = await Assert.ThrowsAsync<OllamaModelNotFoundException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistrl:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal("mistrl:7b", ex.Model);
        Assert.Contains("not found", ex.ServerMessage);
    }

    [Fact]
    public async Task GetResponse_FaultNotFound_ThrowsModelNotFound()
    {
        var client = CreateClient(fault: "not_found");

        await Assert.ThrowsAsync<OllamaModelNotFoundException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));
    }

    [Fact]
    public async Task GetResponse_FaultQueueFull_ThrowsBusyWith503()
    {
        var client = CreateClient(fault: "queue_full");

        var ex = await Assert.ThrowsAsync<OllamaBusyException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal(503, ex.StatusCode);
        Assert.Equal(SimulatorFault.QueueFullMessage, ex.ServerMessage);
    }

    [Fact]
    public async Task GetResponse_FaultHttp500_ThrowsServerErrorWithStatus()
    {
        var client = CreateClient(fault: "http_500");

        var ex = await Assert.ThrowsAsync<OllamaServerException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal(500, ex.StatusCode);
        Assert.Equal(SimulatorFault.RunnerCrashedMessage, ex.ServerMessage);
    }

    [Fact]
    public async Task Streaming_FaultErrorMidStream_YieldsTokensThenThrowsServerError()
    {
        var client = CreateClient(fault: "error_mid_stream:2");
        var texts = new List<string>();

        var ex = await Assert.ThrowsAsync<OllamaServerException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct)
                               .WithCancellation(Ct))
                texts.Add(update.Text);
        }).WaitAsync(Bound, Ct);

        Assert.Equal(2, texts.Count);
        Assert.Null(ex.StatusCode);
        Assert.Equal(SimulatorFault.MidStreamMessage, ex.ServerMessage);
    }

    [Fact]
    public async Task Streaming_FaultCut_ThrowsServerErrorForTheMissingDoneLine()
    {
        var client = CreateClient(fault: "cut:2");

        var ex = await Assert.ThrowsAsync<OllamaServerException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Contains("done", ex.ServerMessage);
    }

    [Fact]
    public async Task Streaming_FaultStall_ThrowsIdleTimeout()
    {
        var client = CreateClient(fault: "stall:2", options: new OllamaOptions { IdleTimeoutSeconds = 0.3 });

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal(OllamaTimeoutPhase.Idle, ex.Phase);
        Assert.Equal("mistral:7b", ex.Model);
    }

    [Fact]
    public async Task Streaming_FaultSlowFirstToken_ThrowsFirstTokenTimeout()
    {
        var client = CreateClient(fault: "slow_first_token:10000", options: new OllamaOptions { FirstTokenTimeoutSeconds = 0.3 });

        var ex = await Assert.ThrowsAsync<OllamaTimeoutException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal(OllamaTimeoutPhase.FirstToken, ex.Phase);
    }

    [Fact]
    public async Task Streaming_FaultUnknown_ThrowsRequestErrorListingValidFaults()
    {
        var client = CreateClient(fault: "meltdown");

        var ex = await Assert.ThrowsAsync<OllamaRequestException>(() =>
            client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "mistral:7b" }, Ct).WaitAsync(Bound, Ct));

        Assert.Equal(400, ex.StatusCode);
        Assert.Contains("queue_full", ex.ServerMessage);
    }

    [Fact]
    public async Task Version_Simulator_IsSimulatorTrue()
    {
        var client = CreateClient();

        var version = await client.GetVersionAsync(Ct).WaitAsync(Bound, Ct);

        Assert.True(version.IsSimulator);
        Assert.Matches(@"^\d+\.\d+\.\d+$", version.Version);
    }

    [Fact]
    public async Task ListModels_DefaultModels_HaveDetailsSizeAndDigest()
    {
        var client = CreateClient();

        var models = await client.ListModelsAsync(Ct).WaitAsync(Bound, Ct);

        var mistral = Assert.Single(models, m => m.Name == "mistral:7b");
        Assert.Equal("mistral:7b", mistral.Model);
        Assert.True(mistral.Size > 0);
        Assert.Equal(64, mistral.Digest?.Length);
        Assert.Equal("llama", mistral.Details?.Family);
        Assert.Equal("7.2B", mistral.Details?.ParameterSize);
        Assert.NotNull(mistral.ModifiedAt);
        Assert.Contains(models, m => m.Name == "llama3.2:latest");
    }

    [Fact]
    public async Task ShowModel_KnownModel_HasCapabilitiesAndContextLength()
    {
        var client = CreateClient();

        var show = await client.ShowModelAsync("qwen3:4b", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(["completion", "tools", "thinking"], show.Capabilities);
        Assert.Equal(40960, show.ContextLength);
        Assert.Equal("qwen3", show.Details?.Family);
    }

    [Fact]
    public async Task ShowModel_UnknownModel_ThrowsModelNotFound()
    {
        var client = CreateClient();

        var ex = await Assert.ThrowsAsync<OllamaModelNotFoundException>(() => client.ShowModelAsync("nope:1b", Ct).WaitAsync(Bound, Ct));

        Assert.Equal("nope:1b", ex.Model);
    }

    [Fact]
    public async Task ListRunning_AfterAGeneration_ListsTheModelWithItsContextLength()
    {
        var client = CreateClient(options: new OllamaOptions { DefaultNumCtx = 2048 });
        await client.GetResponseAsync(Prompt("Hi"), new ChatOptions { ModelId = "phi3:mini" }, Ct).WaitAsync(Bound, Ct);

        var running = await client.ListRunningAsync(Ct).WaitAsync(Bound, Ct);

        var phi = Assert.Single(running, m => m.Name == "phi3:mini");
        Assert.Equal(2048, phi.ContextLength);
        Assert.NotNull(phi.ExpiresAt);
    }

    [Fact]
    public async Task PullModel_LibraryModel_StreamsProgressToSuccess()
    {
        var client = CreateClient();

        var progress = await client.PullModelAsync("smollm2:135m", Ct).ToListAsync(Ct).AsTask().WaitAsync(Bound, Ct);

        Assert.Equal("pulling manifest", progress[0].Status);
        Assert.Contains(progress, p => p.Total > 0 && p.Completed == p.Total);
        Assert.Equal("success", progress[^1].Status);
        var models = await client.ListModelsAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Contains(models, m => m.Name == "smollm2:135m");
    }

    [Fact]
    public async Task PullModel_UnknownModel_ThrowsServerErrorWithOllamasMessage()
    {
        var client = CreateClient();

        var ex = await Assert.ThrowsAsync<OllamaServerException>(() =>
            client.PullModelAsync("does-not-exist:1b", Ct).ToListAsync(Ct).AsTask().WaitAsync(Bound, Ct));

        Assert.Contains("file does not exist", ex.ServerMessage);
    }

    /// <summary>Adds the simulator's fault header to every request, as a test would to a real deployment's client.</summary>
    private sealed class FaultHeaderHandler(string fault) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation(SimulatorFault.HeaderName, fault);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
