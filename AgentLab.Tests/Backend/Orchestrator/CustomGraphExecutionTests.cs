using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend.Orchestrator;

/// <summary><c>"graph": "&lt;name&gt;"</c>: a registered custom graph runs as an orchestrator execution. Real PostgreSQL.</summary>
public sealed class CustomGraphExecutionTests : BackendTestBase
{
    private const string ReviewLoop = """
        {"name":"review-loop","entry":"writer","nodes":[
          {"name":"writer","role":"You write.","output":"text"},
          {"name":"critic","role":"You review.","output":"verdict"}],
         "edges":[{"from":"writer","to":"critic"},{"from":"critic","to":"writer","when":"revise"},{"from":"critic","to":"$end","when":"pass"}]}
        """;

    [Fact]
    public async Task Execute_RegisteredGraph_SendsItsDefinitionToLabServiceAsAnOrchestratorRun()
    {
        var client = Backend();
        var registered = await client.PostAsync("/api/v1/graphs", new StringContent(ReviewLoop, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.Created, registered.StatusCode);

        var response = await PostJsonAsync(client, """{"prompt": "Write a haiku about leases", "graph": "review-loop"}""");

        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        Assert.Equal("orchestrator", body.GetProperty("execution_type").GetString());
        var sent = Assert.Single(Lab.Received, r => r.Path == "/orchestrate/");
        using var request = JsonDocument.Parse(sent.Body);
        var graph = request.RootElement.GetProperty("graph");
        Assert.Equal("review-loop", graph.GetProperty("name").GetString());
        Assert.Equal(2, graph.GetProperty("nodes").GetArrayLength());
        Assert.False(request.RootElement.TryGetProperty("agents", out var agents) && agents.ValueKind != JsonValueKind.Null);
    }

    [Fact]
    public async Task Execute_UnknownGraph_NotFoundAndNothingRecorded()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, """{"prompt": "p", "graph": "no-such-graph"}""");

        var problem = await AssertProblemAsync(response, 404, "graph_not_found");
        Assert.Contains("POST /api/v1/graphs", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await using var db = Database.CreateContext();
        Assert.Equal(0, await db.Executions.CountAsync(Ct));
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/orchestrate/");
    }

    [Theory]
    [InlineData("""{"prompt": "p", "graph": "review-loop", "agents": ["analyzer"]}""", "agents")]
    [InlineData("""{"prompt": "p", "graph": "review-loop", "execution_type": "simple"}""", "graph")]
    [InlineData("""{"prompt": "p", "graph": "Review Loop"}""", "graph")]
    public async Task Execute_GraphWithConflictingFields_ValidationFailedNamingTheField(string json, string field)
    {
        var client = Backend();

        var problem = await AssertProblemAsync(await PostJsonAsync(client, json), 400, "validation_failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }
}
