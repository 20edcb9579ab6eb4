using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend;

/// <summary><c>/api/v1/graphs</c> on real PostgreSQL, with the fake LabService as the validator.</summary>
public sealed class GraphsApiTests : BackendTestBase
{
    private const string ReviewLoop = """
        { "name": "review-loop", "description": "write, criticise, revise", "entry": "writer", "max_steps": 12,
          "nodes": [ { "name": "writer", "role": "You write.", "model": "mistral7b" },
                     { "name": "critic", "role": "You judge.", "output": "verdict" } ],
          "edges": [ { "from": "writer", "to": "critic" },
                     { "from": "critic", "to": "writer", "when": "revise" },
                     { "from": "critic", "to": "$end", "when": "pass" } ] }
        """;

    private static Task<HttpResponseMessage> RegisterAsync(HttpClient client, string json, string query = "",
        string contentType = "application/json") =>
        client.PostAsync("/api/v1/graphs" + query, new StringContent(json, Encoding.UTF8, contentType), Ct).WaitAsync(Bound, Ct);

    private void LabAccepts(string name, int nodes) =>
        Lab.ValidateGraph = FakeLabService.Json(StatusCodes.Status200OK,
            $$"""{"valid":true,"name":"{{name}}","nodes":{{nodes}},"edges":1,"max_steps":20}""");

    [Fact]
    public async Task Register_ValidGraph_201WithLocationStoredAsValidated()
    {
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/api/v1/graphs/review-loop", response.Headers.Location?.ToString());
        var body = await JsonAsync(response);
        Assert.Equal("review-loop", body.GetProperty("name").GetString());
        Assert.Equal("write, criticise, revise", body.GetProperty("description").GetString());
        Assert.Equal(2, body.GetProperty("nodes").GetInt32());
        Assert.Equal(1, body.GetProperty("version").GetInt32());
        Assert.Equal("critic", body.GetProperty("definition").GetProperty("nodes")[1].GetProperty("name").GetString());
        var sent = Assert.Single(Lab.Received, r => r.Path == "/orchestrate/graphs/validate");
        Assert.Equal(ReviewLoop, sent.Body);
        await using var db = Database.CreateContext();
        var stored = await db.Graphs.SingleAsync(Ct);
        Assert.Equal("review-loop", stored.Name);
        Assert.Contains("\"$end\"", stored.Definition, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_SameDefinitionAgainWithOtherLayout_200Unchanged()
    {
        var client = Backend();
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(client, ReviewLoop)).StatusCode);

        var response = await RegisterAsync(client, ReviewLoop.Replace("\n", " ", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await JsonAsync(response)).GetProperty("version").GetInt32());
        Assert.Null(response.Headers.Location);
    }

    [Fact]
    public async Task Register_OtherDefinitionUnderATakenName_409GraphExistsAndKept()
    {
        var client = Backend();
        await RegisterAsync(client, ReviewLoop);

        var response = await RegisterAsync(client, ReviewLoop.Replace("You judge.", "You judge harshly.", StringComparison.Ordinal));

        var problem = await AssertProblemAsync(response, 409, "graph_exists");
        Assert.Contains("replace=true", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await using var db = Database.CreateContext();
        Assert.DoesNotContain("harshly", (await db.Graphs.SingleAsync(Ct)).Definition, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_ReplaceWithOtherDefinition_200VersionTwo()
    {
        var client = Backend();
        var created = await JsonAsync(await RegisterAsync(client, ReviewLoop));

        var response = await RegisterAsync(client, ReviewLoop.Replace("You judge.", "You judge harshly.", StringComparison.Ordinal), "?replace=true");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await JsonAsync(response);
        Assert.Equal(2, body.GetProperty("version").GetInt32());
        Assert.Equal(created.GetProperty("created_at").GetDateTimeOffset(), body.GetProperty("created_at").GetDateTimeOffset());
        Assert.Equal("You judge harshly.", body.GetProperty("definition").GetProperty("nodes")[1].GetProperty("role").GetString());
    }

    [Fact]
    public async Task Register_ReplaceWithTheSameDefinition_VersionUnchanged()
    {
        var client = Backend();
        await RegisterAsync(client, ReviewLoop);

        var response = await RegisterAsync(client, ReviewLoop, "?replace=true");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await JsonAsync(response)).GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task Register_ReplaceOfANewName_201()
    {
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop, "?replace=true");

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task Register_InvalidGraph_400PassedThroughWithErrorsAndNothingStored()
    {
        Lab.ValidateGraph = FakeLabService.Problem(400, "invalid_graph", "The graph definition is not valid",
            "1 problem(s); the first: edges[2].to: unknown node 'critc'",
            "\"errors\":[{\"path\":\"edges[2].to\",\"message\":\"unknown node 'critc'; known: writer, critic, $end.\"}]");
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop);

        var problem = await AssertProblemAsync(response, 400, "invalid_graph");
        var error = Assert.Single(problem.GetProperty("errors").EnumerateArray());
        Assert.Equal("edges[2].to", error.GetProperty("path").GetString());
        Assert.Equal("unknown node 'critc'; known: writer, critic, $end.", error.GetProperty("message").GetString());
        await using var db = Database.CreateContext();
        Assert.Equal(0, await db.Graphs.CountAsync(Ct));
    }

    [Fact]
    public async Task Register_LabServiceDown_503LabUnavailable()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await RegisterAsync(client, ReviewLoop);

        await AssertProblemAsync(response, 503, "lab_unavailable");
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Register_NotJson_415WithoutAskingLabService()
    {
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop, contentType: "text/plain");

        await AssertProblemAsync(response, 415, "unsupported_media_type");
        Assert.Empty(Lab.Received);
    }

    [Fact]
    public async Task Register_TooLarge_413()
    {
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop.Replace("You write.", new string('x', 300 * 1024), StringComparison.Ordinal));

        await AssertProblemAsync(response, 413, "body_too_large");
        Assert.Empty(Lab.Received);
    }

    [Fact]
    public async Task Register_ReplaceNotABoolean_400()
    {
        var client = Backend();

        var response = await RegisterAsync(client, ReviewLoop, "?replace=yes");

        await AssertProblemAsync(response, 400, "validation_failed");
    }

    [Fact]
    public async Task List_TwoGraphs_ByNameWithDescriptionNodeCountAndVersion()
    {
        var client = Backend();
        await RegisterAsync(client, ReviewLoop);
        LabAccepts("alpha", 1);
        await RegisterAsync(client, """{"name":"alpha","entry":"a","nodes":[{"name":"a","role":"r"}],"edges":[{"from":"a","to":"$end"}]}""");

        var response = await client.GetAsync("/api/v1/graphs", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var graphs = (await JsonAsync(response)).GetProperty("graphs").EnumerateArray().ToList();
        Assert.Equal(["alpha", "review-loop"], graphs.Select(g => g.GetProperty("name").GetString()));
        Assert.Equal(System.Text.Json.JsonValueKind.Null, graphs[0].GetProperty("description").ValueKind);
        Assert.Equal(1, graphs[0].GetProperty("nodes").GetInt32());
        Assert.Equal("write, criticise, revise", graphs[1].GetProperty("description").GetString());
        Assert.Equal(2, graphs[1].GetProperty("nodes").GetInt32());
        Assert.Equal(1, graphs[1].GetProperty("version").GetInt32());
        Assert.False(graphs[1].TryGetProperty("definition", out _));
        Assert.True(graphs[1].GetProperty("updated_at").GetDateTimeOffset() > DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public async Task List_NoGraphs_EmptyList()
    {
        var client = Backend();

        var body = await JsonAsync(await client.GetAsync("/api/v1/graphs", Ct).WaitAsync(Bound, Ct));

        Assert.Empty(body.GetProperty("graphs").EnumerateArray());
    }

    [Fact]
    public async Task Get_Registered_DefinitionAsStored()
    {
        var client = Backend();
        await RegisterAsync(client, ReviewLoop);

        var response = await client.GetAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var definition = (await JsonAsync(response)).GetProperty("definition");
        Assert.Equal("writer", definition.GetProperty("entry").GetString());
        Assert.Equal("pass", definition.GetProperty("edges")[2].GetProperty("when").GetString());
    }

    [Fact]
    public async Task Get_Unknown_404GraphNotFound()
    {
        var client = Backend();

        var response = await client.GetAsync("/api/v1/graphs/nope", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(response, 404, "graph_not_found");
    }

    [Fact]
    public async Task Delete_Registered_204ThenGone()
    {
        var client = Backend();
        await RegisterAsync(client, ReviewLoop);

        var response = await client.DeleteAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        await AssertProblemAsync(await client.GetAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct), 404, "graph_not_found");
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(client, ReviewLoop)).StatusCode);
    }

    [Fact]
    public async Task Delete_Unknown_404GraphNotFound()
    {
        var client = Backend();

        var response = await client.DeleteAsync("/api/v1/graphs/nope", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(response, 404, "graph_not_found");
    }
}
