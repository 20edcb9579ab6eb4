using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Lab;
using AgentLab.Backend.Models;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using AgentLab.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// Oversized inputs are refused before they cost anything: bodies (413 <c>payload_too_large</c> on every endpoint that
/// takes one), prompts over the character limit, prompts that do not fit the model's context window (422
/// <c>prompt_too_long</c>, no model call), num_ctx over the model's context, max_tokens and graph max_steps over
/// their bounds. (A WebSocket client message over the limit is closed with 1009: StreamSocketTests.)
/// </summary>
public sealed class InputLimitTests : BackendTestBase
{
    private const int BodyLimit = 4096;

    /// <summary>The fake's default model list: mistral:7b (context 32768), LabService's default num_ctx 4096.</summary>
    private const int DefaultWindow = 4096;

    /// <summary>Two models, the small one with a 1024-token context and the alias "tiny"; no default num_ctx (an older LabService).</summary>
    private const string TwoModels = """
        {"model_server":"simulator","default_model":"mistral:7b","models":[
          {"name":"mistral:7b","aliases":["mistral7b"],"capabilities":["completion"],"context_length":32768,"loaded":true},
          {"name":"tiny:1b","aliases":["tiny"],"capabilities":["completion"],"context_length":1024,"loaded":false}]}
        """;

    /// <summary>ASCII text estimated at exactly <paramref name="tokens"/> tokens (4 bytes each).</summary>
    private static string PromptOf(int tokens) => new('x', tokens * ModelContextLimits.BytesPerToken);

    private static string Execute(string prompt, string extra = "") =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["prompt"] = prompt })[..^1] + extra + "}";

    private async Task<int> ExecutionCountAsync()
    {
        await using var db = Database.CreateContext();
        return await db.Executions.CountAsync(Ct);
    }

    [Fact]
    public async Task Body_OverTheLimitOnEveryEndpointThatTakesOne_413BodyTooLarge()
    {
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxRequestBodyBytes"] = BodyLimit.ToString() }, out var factory);
        // Every POST/PUT/PATCH endpoint the Backend maps, stream tickets included once they exist.
        var writes = factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Pattern: e.RoutePattern.RawText!)))
            .Where(e => e.Method is "POST" or "PUT" or "PATCH")
            .ToList();
        var body = $$"""{"prompt": "{{new string('x', BodyLimit)}}"}""";

        var wrong = new List<string>();
        foreach (var (method, pattern) in writes)
        {
            var path = "/" + pattern.TrimStart('/').Replace("{id}", Guid.NewGuid().ToString(), StringComparison.Ordinal)
                .Replace("{name}", "some-graph", StringComparison.Ordinal);
            using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
            var code = response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                ? (await JsonAsync(response)).GetProperty("code").GetString()
                : null;
            if (response.StatusCode != HttpStatusCode.RequestEntityTooLarge || code != "payload_too_large")
                wrong.Add($"{method} {path}: {(int)response.StatusCode} {code}");
        }

        Assert.Contains(writes, w => w.Pattern.EndsWith("/execute", StringComparison.Ordinal));
        Assert.Contains(writes, w => w.Pattern.TrimEnd('/').EndsWith("/graphs", StringComparison.Ordinal));
        Assert.Empty(wrong);
        Assert.Empty(Lab.Received);
    }

    /// <summary>A body sent without Content-Length, so only counting it as it arrives can stop it.</summary>
    private static HttpRequestMessage Chunked(string path, int bytes)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent($$"""{"prompt": "{{new string('x', bytes)}}"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.TransferEncodingChunked = true;
        return request;
    }

    [Fact]
    public async Task Body_ChunkedOrLargeOverARealSocket_413ProblemNotAReset()
    {
        await using var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString,
            new Dictionary<string, string?> { ["urls"] = "http://127.0.0.1:0", ["Execution:MaxRequestBodyBytes"] = BodyLimit.ToString() });
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        using var client = new HttpClient { BaseAddress = new Uri(address) }.As();

        var chunkedExecute = await client.SendAsync(Chunked("/api/v1/execute", 2 * BodyLimit), Ct).WaitAsync(Bound, Ct);
        var chunkedGraph = await client.SendAsync(Chunked("/api/v1/graphs", 2 * BodyLimit), Ct).WaitAsync(Bound, Ct);
        // Far over the limit, with Content-Length: refused before it is read, and the answer still arrives.
        var large = await PostJsonAsync(client, $$"""{"prompt": "{{new string('x', 2 * 1024 * 1024)}}"}""");

        await AssertProblemAsync(chunkedExecute, 413, "payload_too_large");
        await AssertProblemAsync(chunkedGraph, 413, "payload_too_large");
        var problem = await AssertProblemAsync(large, 413, "payload_too_large");
        Assert.Equal(BodyLimit, problem.GetProperty("limit_bytes").GetInt32());
        Assert.Empty(Lab.Received);
    }

    [Fact]
    public async Task Prompt_OverTheCharacterLimit_400NamingPrompt()
    {
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxPromptLength"] = "100" });

        var response = await PostJsonAsync(client, Execute(new string('x', 101)));

        var problem = await AssertProblemAsync(response, 400, "validation_failed");
        Assert.Contains("Execution:MaxPromptLength", problem.GetProperty("errors").GetProperty("prompt")[0].GetString(), StringComparison.Ordinal);
        Assert.Empty(Lab.Received);
    }

    [Fact]
    public async Task Prompt_OverTheDefaultWindow_422PromptTooLongWithoutModelCall()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, Execute(PromptOf(DefaultWindow + 1), """, "model": "mistral7b" """));

        var problem = await AssertProblemAsync(response, 422, "prompt_too_long");
        Assert.Equal(DefaultWindow + 1, problem.GetProperty("estimated_tokens").GetInt32());
        Assert.Equal(DefaultWindow, problem.GetProperty("context_window").GetInt32());
        Assert.Equal("mistral:7b", problem.GetProperty("model").GetString());
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("UTF-8 bytes / 4", detail, StringComparison.Ordinal);
        Assert.Contains("num_ctx", detail, StringComparison.Ordinal);     // what to do: raise the window
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/inference/");
        Assert.Equal(0, await ExecutionCountAsync());
    }

    [Fact]
    public async Task Prompt_ThatFitsAWindowRaisedWithNumCtx_Runs()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, Execute(PromptOf(DefaultWindow + 1), """, "parameters": {"num_ctx": 8192} """));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = Assert.Single(Lab.Received, r => r.Path == "/inference/");
        Assert.Equal(8192, JsonDocument.Parse(sent.Body).RootElement.GetProperty("parameters").GetProperty("num_ctx").GetInt32());
    }

    [Fact]
    public async Task Prompt_PlusSystemPromptPlusMaxTokens_CountedAgainstTheWindow()
    {
        var client = Backend();

        // 2000 + 1000 prompt tokens fit 4096 alone; with 1500 reserved for the answer they do not.
        var response = await PostJsonAsync(client, Execute(PromptOf(2000),
            $$""", "parameters": {"system": "{{PromptOf(1000)}}", "max_tokens": 1500} """));

        var problem = await AssertProblemAsync(response, 422, "prompt_too_long");
        Assert.Equal(3000, problem.GetProperty("estimated_tokens").GetInt32());
        Assert.Equal(1500, problem.GetProperty("reserved_tokens").GetInt32());
        Assert.Contains("max_tokens", problem.GetProperty("detail").GetString()!, StringComparison.Ordinal);
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Prompt_OverTheModelsContextLength_422ForTheAliasedModel()
    {
        Lab.Models = FakeLabService.Json(StatusCodes.Status200OK, TwoModels);
        var client = Backend();

        var response = await PostJsonAsync(client, Execute(PromptOf(1025), """, "model": "TINY" """));

        var problem = await AssertProblemAsync(response, 422, "prompt_too_long");
        Assert.Equal("tiny:1b", problem.GetProperty("model").GetString());
        Assert.Equal(1024, problem.GetProperty("context_window").GetInt32());
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task NumCtx_OverTheModelsContextLength_422NumCtxTooLarge()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, Execute("p", """, "parameters": {"num_ctx": 65536} """));

        var problem = await AssertProblemAsync(response, 422, "num_ctx_too_large");
        Assert.Equal(32768, problem.GetProperty("context_length").GetInt32());
        Assert.True(problem.GetProperty("errors").TryGetProperty("parameters.num_ctx", out _));
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task MaxTokens_OverTheLimit_400ValidationFailedNamingTheField()
    {
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxTokensLimit"] = "1000" });

        var over = await PostJsonAsync(client, Execute("p", """, "parameters": {"max_tokens": 1001} """));
        var at = await PostJsonAsync(client, Execute("p", """, "parameters": {"max_tokens": 1000} """));

        var problem = await AssertProblemAsync(over, 400, "validation_failed");
        Assert.Contains("Execution:MaxTokensLimit", problem.GetProperty("errors").GetProperty("parameters.max_tokens")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, at.StatusCode);
    }

    [Fact]
    public async Task Orchestrator_GraphNodeOnASmallerModel_CheckedAgainstTheSmallestWindow()
    {
        Lab.Models = FakeLabService.Json(StatusCodes.Status200OK, TwoModels);
        Lab.ValidateGraph = FakeLabService.Json(StatusCodes.Status200OK, """{"valid":true,"name":"mixed","nodes":2,"edges":2,"max_steps":10}""");
        var client = Backend();
        var register = await client.PostAsync("/api/v1/graphs", new StringContent("""
            { "name": "mixed", "entry": "writer", "max_steps": 10,
              "nodes": [ { "name": "writer", "role": "You write." }, { "name": "summarizer", "role": "You sum up.", "model": "tiny" } ],
              "edges": [ { "from": "writer", "to": "summarizer" }, { "from": "summarizer", "to": "$end" } ] }
            """, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.Created, register.StatusCode);

        // 2000 tokens fit mistral:7b's 32768 (no default num_ctx in this list) but not tiny's 1024.
        var tooLong = await PostJsonAsync(client, Execute(PromptOf(2000), """, "graph": "mixed" """));
        var fits = await PostJsonAsync(client, Execute(PromptOf(1000), """, "graph": "mixed" """));

        var problem = await AssertProblemAsync(tooLong, 422, "prompt_too_long");
        Assert.Equal("tiny:1b", problem.GetProperty("model").GetString());
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        Assert.Single(Lab.Received, r => r.Path == "/orchestrate/");
    }

    [Fact]
    public async Task ModelList_Unavailable_RequestIsNotBlocked()
    {
        Lab.Models = FakeLabService.Problem(503, "model_unavailable", "down", "the model server is down", retryAfter: "5");
        var client = Backend();

        // Too long for the default window, but with no list to check against, it goes through.
        var first = await PostJsonAsync(client, Execute(PromptOf(DefaultWindow + 1)));
        var second = await PostJsonAsync(client, Execute("p"));

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        // One failed lookup is remembered: the second request does not ask again.
        Assert.Single(Lab.Received, r => r.Path == "/models/");
    }

    [Fact]
    public async Task ModelList_IsCached_AcrossExecutions()
    {
        var client = Backend();

        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.OK, (await PostJsonAsync(client, Execute("p"))).StatusCode);

        Assert.Single(Lab.Received, r => r.Path == "/models/");
        Assert.Equal(3, Lab.Received.Count(r => r.Path == "/inference/"));
    }

    [Fact]
    public async Task Graph_MaxStepsOverTheLimit_400InvalidGraphNotStored()
    {
        Lab.ValidateGraph = FakeLabService.Json(StatusCodes.Status200OK, """{"valid":true,"name":"loop","nodes":1,"edges":1,"max_steps":12}""");
        var client = Backend(new Dictionary<string, string?> { ["Orchestrator:MaxStepsLimit"] = "10" });

        var response = await client.PostAsync("/api/v1/graphs", new StringContent("""
            { "name": "loop", "entry": "a", "max_steps": 12, "nodes": [ { "name": "a", "role": "r" } ], "edges": [ { "from": "a", "to": "$end" } ] }
            """, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);

        var problem = await AssertProblemAsync(response, 400, "invalid_graph");
        var error = Assert.Single(problem.GetProperty("errors").EnumerateArray());
        Assert.Equal("max_steps", error.GetProperty("path").GetString());
        Assert.Contains("Orchestrator:MaxStepsLimit", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        await using var db = Database.CreateContext();
        Assert.Equal(0, await db.Graphs.CountAsync(Ct));
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("abcd", 1)]
    [InlineData("abcde", 2)]
    [InlineData("ñ", 1)]          // 2 bytes
    [InlineData("日本語です", 4)]   // 15 bytes
    public void EstimateTokens_IsUtf8BytesOverFourRoundedUp(string text, int expected) =>
        Assert.Equal(expected, ModelContextLimits.EstimateTokens(text));

    [Theory]
    [InlineData("mistral7b", "mistral:7b")]
    [InlineData("MISTRAL7B", "mistral:7b")]
    [InlineData("mistral:7b", "mistral:7b")]
    [InlineData("llama3.2", "llama3.2:latest")]
    [InlineData("llama3.2:1b", null)]
    [InlineData("unknown", null)]
    public void Find_ResolvesLikeLabService(string name, string? expected)
    {
        var list = new ModelList
        {
            Models =
            [
                new ModelInfo { Name = "llama3.2:latest" },
                new ModelInfo { Name = "mistral:7b", Aliases = ["mistral7b"] },
            ],
        };

        Assert.Equal(expected, ModelContextLimits.Find(list, name)?.Name);
    }
}
