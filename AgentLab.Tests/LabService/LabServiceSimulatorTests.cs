using AgentLab.LabService.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Hosting.Server;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using AgentLab.ModelSimulator;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.LabService;

/// <summary>
/// LabService over HTTP (WebApplicationFactory) against the real Ollama-protocol simulator in-process: the whole
/// path from <c>/inference/</c> through OllamaClient to the simulator's generation, faults included.
/// </summary>
public sealed class LabServiceSimulatorTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    // Small but non-zero latencies, so the reported metrics can be checked against the configuration.
    private const int TtftMs = 25;
    private const int TokenMs = 2;
    private const int LoadMs = 10;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Inference_Json_ReturnsGeneratedOutputWithMetricsMatchingTheSimulator()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Dime 3 números primos","model":"mistral7b"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJsonAsync(response);
        var output = body.GetProperty("output").GetString();
        Assert.False(string.IsNullOrWhiteSpace(output));
        Assert.NotEqual("Dime 3 números primos", output!.Trim());
        Assert.DoesNotContain("Dime 3 números primos", output);
        Assert.Equal("mistral:7b", body.GetProperty("model").GetString());
        Assert.Equal("mistral7b", body.GetProperty("requested_model").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        Assert.Equal("stop", body.GetProperty("done_reason").GetString());

        // The simulator reports durations as configured latency × count: the numbers must survive ns → ms intact.
        var metrics = body.GetProperty("metrics");
        var completionTokens = metrics.GetProperty("completion_tokens").GetInt32();
        Assert.True(completionTokens > 0);
        Assert.True(metrics.GetProperty("prompt_tokens").GetInt32() > 0);
        Assert.Equal(TtftMs, metrics.GetProperty("prompt_eval_duration_ms").GetDouble(), 6);
        Assert.Equal(completionTokens * TokenMs, metrics.GetProperty("eval_duration_ms").GetDouble(), 6);
        Assert.Equal(1000.0 / TokenMs, metrics.GetProperty("tokens_per_second").GetDouble(), 6);
        Assert.Equal(LoadMs, metrics.GetProperty("load_duration_ms").GetDouble(), 6);
        Assert.True(metrics.GetProperty("total_duration_ms").GetDouble() >= LoadMs + TtftMs + completionTokens * TokenMs);
        Assert.True(metrics.GetProperty("time_to_first_token_ms").GetDouble() >= TtftMs);
        Assert.Equal(1, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Inference_SameRequestTwice_SameOutput()
    {
        await using var lab = await SimulatedLab.StartAsync();
        const string request = """{"prompt":"Explain caching in two sentences","model":"llama3","parameters":{"seed":7}}""";

        var first = await ReadJsonAsync(await lab.InferAsync(request));
        var second = await ReadJsonAsync(await lab.InferAsync(request));

        Assert.Equal(first.GetProperty("output").GetString(), second.GetProperty("output").GetString());
        Assert.Equal(first.GetProperty("metrics").GetProperty("completion_tokens").GetInt32(),
            second.GetProperty("metrics").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(2, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Inference_Ndjson_StreamsStartedTokensCompletedWithTheSameOutput()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Dime 3 números primos","model":"mistral7b"}""", ndjson: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var lines = await ReadLinesAsync(response);
        var types = lines.Select(l => l.GetProperty("type").GetString()).ToList();
        Assert.Equal("started", types[0]);
        Assert.Equal("completed", types[^1]);
        Assert.True(types.Count > 3);
        Assert.All(types[1..^1], t => Assert.Equal("token", t));
        Assert.Equal("simulator", lines[0].GetProperty("model_server").GetString());
        var tokens = string.Concat(lines[1..^1].Select(l => l.GetProperty("content").GetString()));
        var result = lines[^1].GetProperty("result");
        Assert.Equal(result.GetProperty("output").GetString(), tokens);
        Assert.Equal(lines.Count - 2, result.GetProperty("metrics").GetProperty("completion_tokens").GetInt32());

        // The same prompt through JSON mode gives the same text: streaming changes the framing, not the answer.
        var json = await ReadJsonAsync(await lab.InferAsync("""{"prompt":"Dime 3 números primos","model":"mistral7b"}"""));
        Assert.Equal(json.GetProperty("output").GetString(), tokens);
    }

    [Fact]
    public async Task Inference_UnknownModel_Is404WithCloseMatchesAndNoGeneration()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"mistrl7b"}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_not_found", problem.GetProperty("code").GetString());
        Assert.Contains("mistral7b", problem.GetProperty("close_matches").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Theory]
    [InlineData("1e300")]        // overflows TimeSpan.FromSeconds
    [InlineData("10000000")]     // beyond what a CancellationTokenSource accepts (about 24.8 days)
    public async Task Inference_HugeTimeoutSeconds_Is400ValidationFailedNot500(string timeout)
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"mistral7b","parameters":{"timeout_seconds":""" + timeout + "}}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("validation_failed", problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty("parameters.timeout_seconds", out _));
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Inference_ModelPulledOutsideLabService_IsFoundOnceTheListIsOldEnough()
    {
        var clock = new ManualClock();
        await using var lab = await SimulatedLab.StartAsync(realSocket: false, clock);
        var before = await lab.InferAsync("""{"prompt":"Hola","model":"gemma3:1b"}""");
        // Pulled behind LabService's back, as `ollama pull` on the same server would.
        using var ollama = new HttpClient { BaseAddress = lab.Simulator.BaseAddress };
        using var pull = await ollama.PostAsync("/api/pull", new StringContent("""{"model":"gemma3:1b","stream":false}"""), Ct).WaitAsync(Bound, Ct);
        var tooSoon = await lab.InferAsync("""{"prompt":"Hola","model":"gemma3:1b"}""");

        clock.Advance(ModelManager.MissRecheck);
        var after = await lab.InferAsync("""{"prompt":"Hola","model":"gemma3:1b"}""");

        Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);
        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, tooSoon.StatusCode);   // a typo storm must not re-list the server each time
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal("gemma3:1b", (await ReadJsonAsync(after)).GetProperty("model").GetString());
    }

    /// <summary>A clock the test moves by hand (Microsoft.Extensions.TimeProvider.Testing is not available here).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    [Fact]
    public async Task Inference_EmbeddingOnlyModel_Is422ModelNotCapableAndNoGeneration()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"nomic-embed-text"}""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_not_capable", problem.GetProperty("code").GetString());
        Assert.Contains("completion", problem.GetProperty("detail").GetString());
        Assert.Equal(["embedding"], problem.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Inference_ModelFaultErrorMidStream_Is502CarryingTheSimulatorMessage()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"midstream:7b"}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_error", problem.GetProperty("code").GetString());
        Assert.Contains(Fault.MidStreamMessage, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Inference_NdjsonModelFaultErrorMidStream_EndsWithErrorEventAfterTokens()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"midstream:7b"}""", ndjson: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var lines = await ReadLinesAsync(response);
        var types = lines.Select(l => l.GetProperty("type").GetString()).ToList();
        Assert.Equal(["started", "token", "token", "token", "error"], types);
        var error = lines[^1].GetProperty("error");
        Assert.Equal("model_error", error.GetProperty("code").GetString());
        Assert.Equal(502, error.GetProperty("status").GetInt32());
        Assert.Contains(Fault.MidStreamMessage, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Inference_ModelFaultQueueFull_Is503WithRetryAfter()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"busy:7b"}""", ndjson: true);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.Contains("busy", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Inference_ModelFaultStall_Is504NamingTheIdlePhaseAndAbortsTheGeneration()
    {
        await using var lab = await SimulatedLab.StartAsync(("Ollama:IdleTimeoutSeconds", "0.3"));

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"stall:7b"}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_timeout", problem.GetProperty("code").GetString());
        Assert.Equal("idle", problem.GetProperty("phase").GetString());
        Assert.Contains("Ollama:IdleTimeoutSeconds", problem.GetProperty("detail").GetString());
        // The timeout cancels the HTTP call, so the model side stops generating instead of stalling forever.
        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_ModelFaultSlowFirstToken_Is504NamingTheFirstTokenPhase()
    {
        await using var lab = await SimulatedLab.StartAsync(("Ollama:FirstTokenTimeoutSeconds", "0.3"));

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"slow:7b"}""", ndjson: true);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_timeout", problem.GetProperty("code").GetString());
        Assert.Equal("first_token", problem.GetProperty("phase").GetString());
        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_ModelFaultCut_Is502()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"cut:7b"}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_error", problem.GetProperty("code").GetString());
        Assert.Contains("closed the stream before it finished", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Inference_SimulatorStopped_Is503WithRetryAfter(bool modelsCached)
    {
        await using var lab = await SimulatedLab.StartAsync();
        if (modelsCached)
        {
            // The model list is cached: resolution still succeeds, and the call itself must find the server gone.
            var models = await lab.Client.GetAsync("/models/", Ct).WaitAsync(Bound, Ct);
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        }
        await lab.StopSimulatorAsync();

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"mistral7b"}""");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.Contains(lab.Simulator.BaseAddress.Authority, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Inference_SmallMaxTokens_DoneReasonLength()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Write a long essay about rivers","model":"mistral7b","parameters":{"max_tokens":3}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJsonAsync(response);
        Assert.Equal("length", body.GetProperty("done_reason").GetString());
        Assert.Equal(3, body.GetProperty("metrics").GetProperty("completion_tokens").GetInt32());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("output").GetString()));
    }

    [Fact]
    public async Task Inference_NdjsonModelFaultStall_EndsWithTimeoutEventAfterTokens()
    {
        await using var lab = await SimulatedLab.StartAsync(("Ollama:IdleTimeoutSeconds", "0.3"));

        var response = await lab.InferAsync("""{"prompt":"Hola","model":"stall:7b"}""", ndjson: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var lines = await ReadLinesAsync(response);
        Assert.Equal(["started", "token", "token", "error"], lines.Select(l => l.GetProperty("type").GetString()));
        var error = lines[^1].GetProperty("error");
        Assert.Equal("model_timeout", error.GetProperty("code").GetString());
        Assert.Equal(504, error.GetProperty("status").GetInt32());
        Assert.Contains("Ollama:IdleTimeoutSeconds", error.GetProperty("message").GetString());
        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_TimeoutSecondsShorterThanTheGeneration_Is504TotalAndAbortsTheGeneration()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.InferAsync("""{"prompt":"Write a long essay about rivers","model":"crawl:7b","parameters":{"timeout_seconds":0.5}}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        var problem = await ReadJsonAsync(response);
        Assert.Equal("model_timeout", problem.GetProperty("code").GetString());
        Assert.Equal("total", problem.GetProperty("phase").GetString());
        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_NdjsonClientDisconnects_SimulatorSeesTheGenerationAborted()
    {
        await using var lab = await SimulatedLab.StartAsync(realSocket: true);
        var client = lab.Client;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/inference/")
        {
            Content = new StringContent("""{"prompt":"Write a long essay about rivers","model":"crawl:7b"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));

        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(Ct).WaitAsync(Bound, Ct));
            Assert.Contains("\"started\"", await reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct));
            Assert.Contains("\"token\"", await reader.ReadLineAsync(Ct).AsTask().WaitAsync(Bound, Ct));
        }   // closing the connection mid-stream must reach the model server

        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_JsonClientDisconnects_SimulatorSeesTheGenerationAborted()
    {
        await using var lab = await SimulatedLab.StartAsync(realSocket: true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/inference/")
        {
            Content = new StringContent("""{"prompt":"Write a long essay about rivers","model":"crawl:7b"}""", Encoding.UTF8, "application/json"),
        };
        var call = lab.Client.SendAsync(request, cts.Token);
        await lab.WaitUntilAsync(s => s.InFlight == 1);

        // Nothing has been written yet in JSON mode: the caller giving up must still stop the model.
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call.WaitAsync(Bound, Ct));
        await lab.WaitUntilAsync(s => s.AbortedRequests == 1 && s.InFlight == 0);
    }

    [Fact]
    public async Task Inference_ThinkingModel_OutputHasNoReasoningAndCountsAllTokens()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var json = await ReadJsonAsync(await lab.InferAsync("""{"prompt":"Why is the sky blue?","model":"qwen3"}"""));
        var lines = await ReadLinesAsync(await lab.InferAsync("""{"prompt":"Why is the sky blue?","model":"qwen3"}""", ndjson: true));

        Assert.Equal("qwen3:4b", json.GetProperty("model").GetString());
        var output = json.GetProperty("output").GetString();
        Assert.False(string.IsNullOrWhiteSpace(output));
        Assert.Equal(output, string.Concat(lines.Where(l => l.GetProperty("type").GetString() == "token").Select(l => l.GetProperty("content").GetString())));
        Assert.Equal(output, lines[^1].GetProperty("result").GetProperty("output").GetString());
    }

    [Fact]
    public async Task Inference_ParallelRequests_EachGetsItsOwnDeterministicOutput()
    {
        await using var lab = await SimulatedLab.StartAsync();
        var prompts = Enumerable.Range(1, 6).Select(i => $$"""{"prompt":"Tell me fact number {{i}} about owls","model":"mistral7b"}""").ToList();

        var first = await Task.WhenAll(prompts.Select(async p => (await ReadJsonAsync(await lab.InferAsync(p))).GetProperty("output").GetString()));
        var again = await Task.WhenAll(prompts.Select(async p =>
            (await ReadLinesAsync(await lab.InferAsync(p, ndjson: true)))[^1].GetProperty("result").GetProperty("output").GetString()));

        Assert.Equal(6, first.Distinct().Count());
        Assert.Equal(first, again);
    }

    [Fact]
    public async Task Models_Pull_StreamsProgressAndThePulledModelIsListedAndRunnable()
    {
        await using var lab = await SimulatedLab.StartAsync();
        var before = await ReadJsonAsync(await lab.Client.GetAsync("/models/", Ct).WaitAsync(Bound, Ct));

        var pull = await lab.Client.PostAsync("/models/pull", new StringContent("""{"model":"gemma3:1b"}""", Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        var lines = await ReadLinesAsync(pull);
        Assert.Equal("progress", lines[0].GetProperty("type").GetString());
        Assert.Equal("completed", lines[^1].GetProperty("type").GetString());
        Assert.DoesNotContain("gemma3:1b", before.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        var after = await ReadJsonAsync(await lab.Client.GetAsync("/models/", Ct).WaitAsync(Bound, Ct));
        Assert.Contains("gemma3:1b", after.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        var inference = await lab.InferAsync("""{"prompt":"Hola","model":"gemma3:1b"}""");
        Assert.Equal(HttpStatusCode.OK, inference.StatusCode);
    }

    [Fact]
    public async Task Models_PullUnknown_EndsWithErrorEvent()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var pull = await lab.Client.PostAsync("/models/pull", new StringContent("""{"model":"nonexistent:9b"}""", Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);

        var lines = await ReadLinesAsync(pull);
        Assert.Equal("error", lines[^1].GetProperty("type").GetString());
        Assert.Contains("file does not exist", lines[^1].GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Models_List_ShowsTheSimulatorModelsWithCapabilitiesContextAndAliases()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.Client.GetAsync("/models/", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJsonAsync(response);
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var models = body.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        var expected = lab.Simulator.Options.Models.Select(m => ModelRegistry.Normalize(m.Name)).Order().ToList();
        Assert.Equal(expected, models.Keys.Order().ToList());
        var mistral = models["mistral:7b"];
        Assert.Equal(["completion", "tools"], mistral.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(32768, mistral.GetProperty("context_length").GetInt32());
        Assert.Contains("mistral7b", mistral.GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("llama", mistral.GetProperty("family").GetString());
        Assert.Contains("thinking", models["qwen3:4b"].GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(2048, models["nomic-embed-text:latest"].GetProperty("context_length").GetInt32());
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Health_SimulatorUp_HealthySimulatorKindWithoutGenerating()
    {
        await using var lab = await SimulatedLab.StartAsync();

        var response = await lab.Client.GetAsync("/health", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = await ReadJsonAsync(response);
        Assert.Equal("healthy", health.GetProperty("status").GetString());
        var check = health.GetProperty("checks").GetProperty("model_server");
        Assert.Equal("healthy", check.GetProperty("status").GetString());
        Assert.Equal("simulator", check.GetProperty("data").GetProperty("server_kind").GetString());
        Assert.Contains("SIMULATOR", check.GetProperty("description").GetString());
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    private static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<List<JsonElement>> ReadLinesAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct);
        Assert.EndsWith("\n", text);
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    /// <summary>One simulator (with a model per fault) and one LabService pointed at it, for one test.</summary>
    private sealed class SimulatedLab : IAsyncDisposable
    {
        private SimulatedLab(SimulatorHost simulator, WebApplicationFactory<LabServiceMarker> factory, bool realSocket)
        {
            Simulator = simulator;
            Factory = factory;
            if (realSocket)
            {
                // The address comes as configuration ("urls" below); UseKestrel(0) races the minimal-hosting
                // entry point over the server's addresses.
                factory.UseKestrel();
                factory.StartServer();
                var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
                Client = new HttpClient { BaseAddress = new Uri(address) };
            }
            else
            {
                Client = factory.CreateClient();
            }
        }

        public SimulatorHost Simulator { get; }
        public WebApplicationFactory<LabServiceMarker> Factory { get; }
        public HttpClient Client { get; }

        public static Task<SimulatedLab> StartAsync(params (string Key, string Value)[] settings) => StartAsync(false, settings);

        /// <param name="realSocket">Kestrel on a loopback port instead of TestServer (closing a connection is observable).</param>
        public static Task<SimulatedLab> StartAsync(bool realSocket, params (string Key, string Value)[] settings) =>
            StartAsync(realSocket, time: null, settings);

        /// <param name="time">Replaces LabService's clock (the model cache's), when a test must move time.</param>
        public static async Task<SimulatedLab> StartAsync(bool realSocket, TimeProvider? time, params (string Key, string Value)[] settings)
        {
            var options = new SimulatorOptions { TimeToFirstTokenMs = TtftMs, TokenLatencyMs = TokenMs, LoadDurationMs = LoadMs, PullStepDelayMs = 0 };
            // A model per fault, so LabService finds them in /api/tags and every request to them fails that way.
            options.Models.AddRange(
            [
                new SimulatedModel { Name = "midstream:7b", Fault = "error_mid_stream:3" },
                new SimulatedModel { Name = "busy:7b", Fault = "queue_full" },
                new SimulatedModel { Name = "stall:7b", Fault = "stall:2" },
                new SimulatedModel { Name = "slow:7b", Fault = "slow_first_token:10000" },
                new SimulatedModel { Name = "cut:7b", Fault = "cut:2" },
                // Slow enough that a request is surely still generating when a test cancels or times it out.
                new SimulatedModel { Name = "crawl:7b", TokenLatencyMs = 200 },
            ]);
            var simulator = await SimulatorHost.StartAsync(options, Ct).WaitAsync(Bound, Ct);
            var factory = new WebApplicationFactory<LabServiceMarker>().WithWebHostBuilder(builder =>
            {
                builder.UseSetting("ConnectionStrings:ollama", $"Endpoint={simulator.BaseAddress}");
                builder.UseSetting("Ollama:ConnectTimeoutSeconds", "2");
                if (realSocket)
                    builder.UseSetting("urls", "http://127.0.0.1:0");
                foreach (var (key, value) in settings)
                    builder.UseSetting(key, value);
                if (time is not null)
                    builder.ConfigureServices(services => services.AddSingleton(time));
            });
            return new SimulatedLab(simulator, factory, realSocket);
        }

        public async Task<HttpResponseMessage> InferAsync(string json, bool ndjson = false)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/inference/")
            {
                Content = new StringContent(json, Encoding.UTF8, "application/json"),
            };
            if (ndjson)
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
            return await Client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
        }

        /// <summary>Waits (bounded) until the simulator's counters satisfy the condition: aborts are seen asynchronously.</summary>
        public async Task WaitUntilAsync(Func<SimulatorStats, bool> condition)
        {
            async Task PollAsync()
            {
                while (!condition(Simulator.Stats))
                    await Task.Delay(20, Ct);
            }
            try
            {
                await PollAsync().WaitAsync(Bound, Ct);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"The simulator never reached the expected state; its counters are {Simulator.Stats}.");
            }
        }

        private bool _simulatorStopped;

        /// <summary>Stops the model server while LabService keeps running.</summary>
        public async Task StopSimulatorAsync()
        {
            _simulatorStopped = true;
            await Simulator.DisposeAsync().AsTask().WaitAsync(Bound, Ct);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Factory.DisposeAsync();
            if (!_simulatorStopped)
                await Simulator.DisposeAsync();
        }
    }
}
