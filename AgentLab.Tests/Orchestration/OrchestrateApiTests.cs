using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using AgentLab.ModelSimulator;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.Orchestration;

/// <summary><c>POST /orchestrate/</c> over HTTP (WebApplicationFactory) with the in-process simulator as the model.</summary>
public sealed class OrchestrateApiTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The simulator's models plus one that breaks mid-stream and one slow enough to be caught generating.</summary>
    private static Task<OrchestrationLab> StartLabAsync() => OrchestrationLab.StartAsync(
        new SimulatedModel { Name = "midstream:7b", Fault = "error_mid_stream:3" },
        new SimulatedModel { Name = "crawl:7b", TokenLatencyMs = 200 });

    private static string[] NodeNames(JsonElement flow) =>
        [.. flow.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString()!)];

    [Fact]
    public async Task Orchestrate_Json_RunsTheLabGraphWithFlowAndMetrics()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync("""{"prompt":"List three prime numbers","model":"mistral7b","parameters":{"seed":1}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.Equal("mistral:7b", body.GetProperty("model").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var stop = body.GetProperty("stop_reason").GetProperty("code").GetString();
        Assert.Contains(stop, new[] { "completed", "rejected" });
        var flow = body.GetProperty("flow");
        var names = NodeNames(flow);
        Assert.Equal(["analyzer", "executor", "validator"], names[..3]);
        Assert.All(flow.GetProperty("nodes").EnumerateArray(), n => Assert.Equal("completed", n.GetProperty("status").GetString()));
        Assert.True(flow.GetProperty("iterations").GetInt32() >= 1);
        // Every node made exactly one model call here, and the simulator saw exactly those.
        Assert.Equal(names.Length, body.GetProperty("metrics").GetProperty("model_calls").GetInt32());
        Assert.Equal(names.Length, lab.Simulator.Stats.GenerationRequests);
        Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("output").GetString()));
        Assert.Equal(stop, body.GetProperty("report").GetProperty("stop_reason").GetString());
    }

    [Fact]
    public async Task Orchestrate_Ndjson_StreamsGapFreeEventsEndingWithCompleted()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync("""{"prompt":"Explain caching","model":"mistral7b","agents":["analyzer","executor"]}""", ndjson: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), lines.Select(l => l.GetProperty("seq").GetInt64()));
        Assert.Equal(("node_started", "analyzer"), (lines[0].GetProperty("type").GetString(), lines[0].GetProperty("node").GetString()));
        Assert.Contains(lines, l => l.GetProperty("type").GetString() == "token");
        Assert.Equal(2, lines.Count(l => l.GetProperty("type").GetString() == "node_completed"));
        var last = lines[^1];
        Assert.Equal("completed", last.GetProperty("type").GetString());
        Assert.Equal("completed", last.GetProperty("data").GetProperty("stop_reason").GetProperty("code").GetString());
        Assert.Equal(["analyzer", "executor"], NodeNames(last.GetProperty("data").GetProperty("flow")));
    }

    [Fact]
    public async Task Orchestrate_PreviousNodes_CompletedNodesAreNotRunAgain()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync("""
            {"prompt":"Explain caching","model":"mistral7b","agents":["analyzer","executor"],
             "previous_nodes":[{"name":"analyzer","status":"completed","attempt":1,"output":"the restored plan"},
                               {"name":"executor","status":"failed","attempt":1}]}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var nodes = (await OrchestrationLab.ReadJsonAsync(response)).GetProperty("flow").GetProperty("nodes");
        Assert.True(nodes[0].GetProperty("restored").GetBoolean());
        Assert.Equal("the restored plan", nodes[0].GetProperty("output").GetString());
        Assert.Equal("executor", nodes[1].GetProperty("name").GetString());
        Assert.Equal(1, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_WithTheCalculatorTool_ExecutorCallsItThroughOllamaToolCalling()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync("""{"prompt":"What is 17 * 23?","model":"mistral7b","tools":["calculator"]}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        var executor = body.GetProperty("flow").GetProperty("nodes").EnumerateArray()
            .First(n => n.GetProperty("name").GetString() == "executor");
        Assert.True(executor.GetProperty("metrics").GetProperty("tool_calls").GetInt32() >= 1);
        Assert.True(body.GetProperty("metrics").GetProperty("tool_calls").GetInt32() >= 1);
    }

    [Theory]
    [InlineData("""{"prompt":"x","agents":["analyzer","planner"]}""", HttpStatusCode.BadRequest, "unknown_agent")]
    [InlineData("""{"prompt":"x","tools":["calculator","teleport"]}""", HttpStatusCode.BadRequest, "unknown_tool")]
    [InlineData("""{"prompt":"x","model":"nope:1b"}""", HttpStatusCode.NotFound, "model_not_found")]
    [InlineData("""{"prompt":"","parameters":{"max_iterations":-1}}""", HttpStatusCode.BadRequest, "validation_failed")]
    public async Task Orchestrate_BadRequest_ProblemWithStableCode(string json, HttpStatusCode status, string code)
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync(json);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, (await OrchestrationLab.ReadJsonAsync(response)).GetProperty("code").GetString());
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_ModelFailsMidRun_MappedLikeInferenceWithTheFlowSoFar()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.PostAsync("""{"prompt":"Explain caching","model":"midstream:7b"}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var problem = await OrchestrationLab.ReadJsonAsync(response);
        Assert.Equal("model_error", problem.GetProperty("code").GetString());
        Assert.Equal("node_failed", problem.GetProperty("stop_reason").GetProperty("code").GetString());
        var node = Assert.Single(problem.GetProperty("flow").GetProperty("nodes").EnumerateArray());
        Assert.Equal(("analyzer", "failed"), (node.GetProperty("name").GetString(), node.GetProperty("status").GetString()));
        // Tokens had been streamed: the node is not retried.
        Assert.Equal(1, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_ClientDisconnects_RunAndModelCallAreCancelled()
    {
        await using var lab = await StartLabAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var request = new HttpRequestMessage(HttpMethod.Post, "/orchestrate/")
        {
            Content = new StringContent("""{"prompt":"Explain caching","model":"crawl:7b"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        var response = await lab.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).WaitAsync(Bound, Ct);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        string? line;
        do
            line = await reader.ReadLineAsync(cts.Token).AsTask().WaitAsync(Bound, Ct);
        while (line is not null && !line.Contains("\"token\"", StringComparison.Ordinal));

        await cts.CancelAsync();
        response.Dispose();

        var deadline = DateTime.UtcNow + Bound;
        while (lab.Simulator.Stats.AbortedRequests == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20, Ct);
        Assert.Equal(1, lab.Simulator.Stats.AbortedRequests);
        Assert.Equal(1, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Describe_DefaultModel_ReportsGraphReadyWorkersAndCapabilitiesWithoutGenerating()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.Client.GetAsync("/orchestrate/", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.True(body.GetProperty("ready").GetBoolean());
        var graph = body.GetProperty("graph");
        Assert.Equal("analyzer", graph.GetProperty("entry").GetString());
        Assert.Contains(graph.GetProperty("edges").EnumerateArray(), e =>
            e.GetProperty("from").GetString() == "validator" && e.GetProperty("to").GetString() == "executor"
            && e.GetProperty("label").GetString() == "revise");
        Assert.Equal(["analyzer", "executor", "validator", "monitor"],
            body.GetProperty("workers").EnumerateArray().Select(w => w.GetProperty("name").GetString()));
        var model = body.GetProperty("model");
        Assert.Equal("mistral:7b", model.GetProperty("name").GetString());
        Assert.True(model.GetProperty("tools").GetBoolean());
        Assert.True(model.GetProperty("json_format").GetBoolean());
        Assert.Equal("simulator", body.GetProperty("model_server").GetProperty("kind").GetString());
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Describe_UnknownModel_WorkersNotReadyWithTheReason()
    {
        await using var lab = await StartLabAsync();

        var response = await lab.Client.GetAsync("/orchestrate/?model=nope:1b", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.False(body.GetProperty("ready").GetBoolean());
        Assert.False(body.GetProperty("model").GetProperty("available").GetBoolean());
        var analyzer = body.GetProperty("workers")[0];
        Assert.False(analyzer.GetProperty("ready").GetBoolean());
        Assert.Contains("nope:1b", analyzer.GetProperty("reason").GetString());
    }
}
