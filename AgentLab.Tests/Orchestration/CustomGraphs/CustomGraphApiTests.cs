using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using AgentLab.ModelSimulator;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.Orchestration.CustomGraphs;

/// <summary><c>POST /orchestrate/</c> with a <c>graph</c>, over HTTP with the in-process simulator as the model.</summary>
public sealed class CustomGraphApiTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // The simulator picks a verdict from the schema's enum: the fallback edge routes whichever it picks.
    private const string ReviewGraph = """
        {"name":"review","entry":"writer","max_steps":4,
         "nodes":[{"name":"writer","role":"You write short texts."},
                  {"name":"critic","role":"You judge the text.","output":"verdict","model":"phi3:mini"}],
         "edges":[{"from":"writer","to":"critic"},{"from":"critic","to":"$end"}]}
        """;

    [Fact]
    public async Task Orchestrate_WithGraph_RunsItsNodesOnTheirModels()
    {
        await using var lab = await OrchestrationLab.StartAsync();

        var response = await lab.PostAsync($$"""{"prompt":"Write about caching","model":"mistral7b","graph":{{ReviewGraph}}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.Equal("completed", body.GetProperty("stop_reason").GetProperty("code").GetString());
        var nodes = body.GetProperty("flow").GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(["writer", "critic"], nodes.Select(n => n.GetProperty("name").GetString()));
        // The critic answered through Ollama's format schema: its route is a verdict.
        Assert.Contains(nodes[1].GetProperty("route").GetString(), new[] { "pass", "revise", "fail" });
        Assert.Equal(nodes[0].GetProperty("output").GetString(), body.GetProperty("output").GetString());
        Assert.Equal(2, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_WithGraphAsNdjson_StreamsItsNodesAndEndsCompleted()
    {
        await using var lab = await OrchestrationLab.StartAsync();

        var response = await lab.PostAsync($$"""{"prompt":"Write about caching","model":"mistral7b","graph":{{ReviewGraph}}}""", ndjson: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["writer", "critic"], lines.Where(l => l.GetProperty("type").GetString() == "node_completed")
            .Select(l => l.GetProperty("node").GetString()));
        Assert.Equal("completed", lines[^1].GetProperty("type").GetString());
        Assert.Equal("completed", lines[^1].GetProperty("data").GetProperty("stop_reason").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Orchestrate_WithInvalidGraph_Returns400InvalidGraphNamingThePath()
    {
        await using var lab = await OrchestrationLab.StartAsync();
        const string graph = """
            {"name":"broken","entry":"writer","nodes":[{"name":"writer","role":"You write."}],
             "edges":[{"from":"writer","to":"ghost"}]}
            """;

        var response = await lab.PostAsync($$"""{"prompt":"Write","model":"mistral7b","graph":{{graph}}}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.Equal("invalid_graph", body.GetProperty("code").GetString());
        Assert.Contains(body.GetProperty("errors").EnumerateArray(), e => e.GetProperty("path").GetString() == "edges[0].to");
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_WithGraphNodeOnAnUnknownModel_Returns404BeforeRunning()
    {
        await using var lab = await OrchestrationLab.StartAsync();
        var graph = ReviewGraph.Replace("phi3:mini", "no-such-model:1b", StringComparison.Ordinal);

        var response = await lab.PostAsync($$"""{"prompt":"Write","model":"mistral7b","graph":{{graph}}}""");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("model_not_found", (await OrchestrationLab.ReadJsonAsync(response)).GetProperty("code").GetString());
        Assert.Equal(0, lab.Simulator.Stats.GenerationRequests);
    }

    [Fact]
    public async Task Orchestrate_WithGraphAndAgents_Returns400()
    {
        await using var lab = await OrchestrationLab.StartAsync();

        var response = await lab.PostAsync($$"""{"prompt":"Write","model":"mistral7b","agents":["executor"],"graph":{{ReviewGraph}}}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await OrchestrationLab.ReadJsonAsync(response);
        Assert.True(body.GetProperty("errors").TryGetProperty("agents", out _));
    }
}
