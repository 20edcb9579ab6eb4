using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.LabService;

/// <summary>The LabService over HTTP (WebApplicationFactory) against the scripted fake Ollama.</summary>
public sealed class LabServiceApiTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static WebApplicationFactory<LabServiceMarker> CreateFactory(Uri ollama, params (string Key, string Value)[] settings) =>
        new WebApplicationFactory<LabServiceMarker>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("ConnectionStrings:ollama", $"Endpoint={ollama}");
            builder.UseSetting("Ollama:ConnectTimeoutSeconds", "2");
            builder.UseSetting("Ollama:IdleTimeoutSeconds", "0.5");
            foreach (var (key, value) in settings)
                builder.UseSetting(key, value);
        });

    private static HttpRequestMessage Infer(string json, bool ndjson = false)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/inference/")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (ndjson)
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        return request;
    }

    private static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response, CancellationToken ct) =>
        (await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), cancellationToken: ct)).RootElement;

    private static async Task<List<JsonElement>> ReadLinesAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
    }

    [Fact]
    public async Task Inference_Json_ReturnsOutputModelAndMetrics()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"Say hello","model":"mistral7b","system":"Be brief","parameters":{"temperature":0.2,"max_tokens":32,"num_ctx":2048}}"""), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJsonAsync(response, ct);
        Assert.Equal("Hello world", body.GetProperty("output").GetString());
        Assert.Equal("mistral:7b", body.GetProperty("model").GetString());
        Assert.Equal("mistral7b", body.GetProperty("requested_model").GetString());
        Assert.Equal("ollama", body.GetProperty("model_server").GetString());
        Assert.Equal("stop", body.GetProperty("done_reason").GetString());
        var metrics = body.GetProperty("metrics");
        Assert.Equal(182.242375, metrics.GetProperty("total_duration_ms").GetDouble(), 6);
        Assert.Equal(41.295167, metrics.GetProperty("load_duration_ms").GetDouble(), 6);
        Assert.Equal(169, metrics.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(15, metrics.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(15 / 0.115959084, metrics.GetProperty("tokens_per_second").GetDouble(), 3);
        Assert.True(metrics.GetProperty("wall_duration_ms").GetDouble() > 0);
        Assert.True(metrics.TryGetProperty("time_to_first_token_ms", out _));
        var sent = Assert.Single(fake.ChatRequests);
        Assert.Equal(2048, sent.GetProperty("options").GetProperty("num_ctx").GetInt32());
        Assert.Equal(32, sent.GetProperty("options").GetProperty("num_predict").GetInt32());
    }

    [Fact]
    public async Task Inference_Ndjson_StreamsStartedTokensCompleted()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.IsSimulator = true;
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"Say hello"}""", ndjson: true), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var lines = await ReadLinesAsync(response, ct);
        Assert.Equal(["started", "token", "token", "completed"], lines.Select(l => l.GetProperty("type").GetString()));
        Assert.Equal("mistral:7b", lines[0].GetProperty("model").GetString());
        Assert.Equal("simulator", lines[0].GetProperty("model_server").GetString());
        Assert.Equal("Hello", lines[1].GetProperty("content").GetString());
        var result = lines[3].GetProperty("result");
        Assert.Equal("Hello world", result.GetProperty("output").GetString());
        Assert.Equal("simulator", result.GetProperty("model_server").GetString());
    }

    [Fact]
    public async Task Inference_NdjsonErrorLineAfterStart_EndsWithErrorEvent()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
            [FakeOllama.TokenLine("mistral:7b", "Hel"), """{"error":"model runner has unexpectedly stopped"}"""]);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"Say hello"}""", ndjson: true), ct).WaitAsync(Bound, ct);

        var lines = await ReadLinesAsync(response, ct);
        Assert.Equal(["started", "token", "error"], lines.Select(l => l.GetProperty("type").GetString()));
        var error = lines[2].GetProperty("error");
        Assert.Equal("model_error", error.GetProperty("code").GetString());
        Assert.Equal(502, error.GetProperty("status").GetInt32());
        Assert.Contains("unexpectedly stopped", error.GetProperty("message").GetString());
    }

    public static TheoryData<string, int, string> FaultScripts => new()
    {
        { "error-line", 502, "model_error" },
        { "cut", 502, "model_error" },
        { "busy", 503, "model_unavailable" },
        { "stall", 504, "model_timeout" },
        { "missing", 404, "model_not_found" },
    };

    [Theory]
    [MemberData(nameof(FaultScripts))]
    public async Task Inference_ModelServerFault_IsProblemWithCodeAndStatus(string fault, int status, string code)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = fault switch
        {
            "error-line" => (ctx, body) => FakeOllama.WriteLinesAsync(ctx, ["""{"error":"out of memory"}"""]),
            "cut" => (ctx, body) => Task.CompletedTask,
            "busy" => (ctx, body) => FakeOllama.ErrorAsync(ctx, 503, "server busy, please try again.  maximum pending requests exceeded"),
            "stall" => async (ctx, body) =>
            {
                await FakeOllama.WriteLinesAsync(ctx, [FakeOllama.TokenLine("mistral:7b", "Hel")]);
                await FakeOllama.HangAsync(ctx);
            },
            _ => (ctx, body) => FakeOllama.ErrorAsync(ctx, 404, $"model '{FakeOllama.ModelOf(body)}' not found"),
        };
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        // In NDJSON mode too: nothing was streamed yet, so the failure keeps its status code.
        var json = await client.SendAsync(Infer("""{"prompt":"Say hello"}"""), ct).WaitAsync(Bound, ct);
        var ndjson = await client.SendAsync(Infer("""{"prompt":"Say hello"}""", ndjson: fault != "stall"), ct).WaitAsync(Bound, ct);

        Assert.Equal(status, (int)json.StatusCode);
        Assert.Equal("application/problem+json", json.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, (await ReadJsonAsync(json, ct)).GetProperty("code").GetString());
        Assert.Equal(status, (int)ndjson.StatusCode);
        if (status == 503)
            Assert.NotNull(json.Headers.RetryAfter);
    }

    [Fact]
    public async Task Inference_UnknownModel_Is404WithCloseMatches()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"Hi","model":"mistrl7b"}""", ndjson: true), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var problem = await ReadJsonAsync(response, ct);
        Assert.Equal("model_not_found", problem.GetProperty("code").GetString());
        Assert.StartsWith("Model 'mistrl7b' is not available on the model server. Did you mean: mistral7b (mistral:7b)",
            problem.GetProperty("detail").GetString());
        Assert.Equal("mistral7b", problem.GetProperty("close_matches")[0].GetString());
        Assert.Empty(fake.ChatRequests);
    }

    [Fact]
    public async Task Inference_ServerDown_Is503WithRetryAfterAndWhatToDo()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var factory = CreateFactory(FakeOllama.RefusedAddress());
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"Hi"}""", ndjson: true), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        var problem = await ReadJsonAsync(response, ct);
        Assert.Equal("model_unavailable", problem.GetProperty("code").GetString());
        Assert.Contains("ConnectionStrings:ollama", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Inference_InvalidFields_Is400ValidationFailedByField()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer("""{"prompt":"","parameters":{"temperature":3}}"""), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadJsonAsync(response, ct);
        Assert.Equal("validation_failed", problem.GetProperty("code").GetString());
        var errors = problem.GetProperty("errors");
        Assert.True(errors.TryGetProperty("prompt", out _));
        Assert.True(errors.TryGetProperty("parameters.temperature", out _));
    }

    [Theory]
    [InlineData("""{"prompt":"Hi","parameters":{"temperature":"hot"}}""", "$.parameters.temperature")]
    [InlineData("""{"prompt":"Hi",""", "$")]
    [InlineData("", "$")]
    public async Task Inference_MalformedJson_Is400InvalidJsonNamingThePath(string json, string path)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.SendAsync(Infer(json), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await ReadJsonAsync(response, ct);
        Assert.Equal("invalid_json", problem.GetProperty("code").GetString());
        Assert.StartsWith(path, problem.GetProperty("json_path").GetString());
    }

    [Fact]
    public async Task Inference_WrongContentType_Is415()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.PostAsync("/inference/", new StringContent("prompt=Hi", Encoding.UTF8, "text/plain"), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", (await ReadJsonAsync(response, ct)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task Inference_ClientDisconnects_CancelsTheModelCall()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = async (ctx, body) =>
        {
            await FakeOllama.WriteLinesAsync(ctx, [FakeOllama.TokenLine("mistral:7b", "Hel")]);
            await FakeOllama.HangAsync(ctx);
        };
        // A real socket (closing it is the point); the address comes as configuration, not UseKestrel(0), which
        // races the minimal-hosting entry point over the server's addresses.
        await using var factory = CreateFactory(fake.BaseAddress, ("Ollama:IdleTimeoutSeconds", "600"), ("urls", "http://127.0.0.1:0"));
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        using var client = new HttpClient { BaseAddress = new Uri(address) };
        using var request = Infer("""{"prompt":"Hi"}""", ndjson: true);

        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).WaitAsync(Bound, ct))
        {
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            Assert.Contains("\"started\"", await reader.ReadLineAsync(ct).AsTask().WaitAsync(Bound, ct));
        }   // disposing the response closes the connection mid-stream

        await fake.ChatAborted.Task.WaitAsync(Bound, ct);
    }

    [Fact]
    public async Task Models_List_MergesTagsShowAndPs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.IsSimulator = true;
        await using var factory = CreateFactory(fake.BaseAddress, ("Lab:Aliases:mymodel", "qwen3:4b"));
        var client = factory.CreateClient();

        var response = await client.GetAsync("/models/", ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ReadJsonAsync(response, ct);
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var models = body.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Equal(3, models.Count);
        var mistral = models["mistral:7b"];
        Assert.Equal("mistral7b", mistral.GetProperty("aliases")[0].GetString());
        Assert.True(mistral.GetProperty("loaded").GetBoolean());
        Assert.Equal(32768, mistral.GetProperty("context_length").GetInt32());
        Assert.Equal("Q4_0", mistral.GetProperty("quantization_level").GetString());
        Assert.Equal("tools", mistral.GetProperty("capabilities")[1].GetString());
        Assert.False(models["qwen3:4b"].GetProperty("loaded").GetBoolean());
        Assert.Contains("mymodel", models["qwen3:4b"].GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task Models_GetOneByAlias_ReturnsIt()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var found = await client.GetAsync("/models/llama3", ct).WaitAsync(Bound, ct);
        var missing = await client.GetAsync("/models/lama", ct).WaitAsync(Bound, ct);

        Assert.Equal("llama3.2:latest", (await ReadJsonAsync(found, ct)).GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Models_Pull_StreamsProgressThenCompleted()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.PostAsJsonAsync("/models/pull", new { model = "phi3" }, ct).WaitAsync(Bound, ct);

        var lines = await ReadLinesAsync(response, ct);
        Assert.Equal("progress", lines[0].GetProperty("type").GetString());
        Assert.Equal("completed", lines[^1].GetProperty("type").GetString());
    }

    [Fact]
    public async Task Health_ModelServerUp_IsHealthy()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        await using var factory = CreateFactory(fake.BaseAddress);
        var client = factory.CreateClient();

        var response = await client.GetAsync("/health", ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var health = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var check = health.RootElement.GetProperty("checks").GetProperty("model_server");
        Assert.Equal("healthy", check.GetProperty("status").GetString());
        Assert.Equal(fake.BaseAddress.ToString().TrimEnd('/'), check.GetProperty("data").GetProperty("endpoint").GetString()?.TrimEnd('/'));
        Assert.Equal(1, fake.VersionCalls);
        Assert.Empty(fake.ChatRequests);
    }

    [Fact]
    public async Task Health_ModelServerDown_IsDegradedNotUnhealthy()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var factory = CreateFactory(FakeOllama.RefusedAddress());
        var client = factory.CreateClient();

        var response = await client.GetAsync("/health", ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var health = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("degraded", health.RootElement.GetProperty("status").GetString());
        var check = health.RootElement.GetProperty("checks").GetProperty("model_server");
        Assert.Equal("degraded", check.GetProperty("status").GetString());
        Assert.Contains("ConnectionStrings:ollama", check.GetProperty("description").GetString());
    }
}
