using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Tests.Backend.Streams;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static AgentLab.Tests.Backend.History.ExecutionRows;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// Everything belongs to the token's subject: bob gets for alice's execution exactly what he gets for an id that does
/// not exist (404 execution_not_found) over REST, SSE and WebSocket; his history, metrics and graphs hold only his own;
/// an admin sees everyone's. Real PostgreSQL, the fake LabService.
/// </summary>
public sealed class OwnershipTests : StreamsTestBase
{
    private const string Alice = "alice", Bob = "bob";

    [Fact]
    public async Task GetExecution_AnotherSubjects_404IdenticalToAnUnknownId_OwnerAndAdminSeeIt()
    {
        var factory = Replica();
        var row = Row(ExecutionStatus.Completed, DateTimeOffset.UtcNow, owner: Alice);
        await InsertAsync(Database, [row], Ct);
        var unknown = Guid.CreateVersion7();

        var bobs = await factory.CreateClientFor(Bob).GetAsync($"/api/v1/executions/{row.Id}", Ct).WaitAsync(Bound, Ct);
        var missing = await factory.CreateClientFor(Bob).GetAsync($"/api/v1/executions/{unknown}", Ct).WaitAsync(Bound, Ct);
        var alices = await factory.CreateClientFor(Alice).GetAsync($"/api/v1/executions/{row.Id}", Ct).WaitAsync(Bound, Ct);
        var admins = await factory.CreateClientFor("root", "admin").GetAsync($"/api/v1/executions/{row.Id}", Ct).WaitAsync(Bound, Ct);

        var forBob = await AssertProblemAsync(bobs, 404, "execution_not_found");
        var forUnknown = await AssertProblemAsync(missing, 404, "execution_not_found");
        AssertSameShape(forUnknown, forBob, row.Id, unknown);
        Assert.Equal(HttpStatusCode.OK, alices.StatusCode);
        Assert.Equal(HttpStatusCode.OK, admins.StatusCode);
        Assert.Equal(row.Id.ToString(), (await JsonAsync(admins)).GetProperty("execution_id").GetString());
    }

    [Fact]
    public async Task Cancel_AnotherSubjectsRunningExecution_404AndItKeepsRunning_TheOwnerCancelsIt()
    {
        var factory = Replica();
        var running = Row(ExecutionStatus.Running, DateTimeOffset.UtcNow, owner: Alice);
        var finished = Row(ExecutionStatus.Completed, DateTimeOffset.UtcNow, owner: Alice);
        await InsertAsync(Database, [running, finished], Ct);
        var bob = factory.CreateClientFor(Bob);

        var onRunning = await bob.PostAsync($"/api/v1/executions/{running.Id}/cancel", null, Ct).WaitAsync(Bound, Ct);
        // A finished execution of another would answer 409 execution_finished to its owner: to bob it does not exist.
        var onFinished = await bob.PostAsync($"/api/v1/executions/{finished.Id}/cancel", null, Ct).WaitAsync(Bound, Ct);
        var statusAfterBob = await StatusAsync(running.Id);
        var byAlice = await factory.CreateClientFor(Alice).PostAsync($"/api/v1/executions/{running.Id}/cancel", null, Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(onRunning, 404, "execution_not_found");
        await AssertProblemAsync(onFinished, 404, "execution_not_found");
        Assert.Equal(ExecutionStatus.Running, statusAfterBob);
        Assert.Equal(HttpStatusCode.OK, byAlice.StatusCode);
        Assert.Equal(ExecutionStatus.Cancelled, await StatusAsync(running.Id));
    }

    [Fact]
    public async Task Execution_OlderThanAuth_SeenByAdminsOnly()
    {
        var factory = Replica();
        var legacy = Row(ExecutionStatus.Completed, DateTimeOffset.UtcNow, owner: "");
        await InsertAsync(Database, [legacy], Ct);

        var forAlice = await factory.CreateClientFor(Alice).GetAsync($"/api/v1/executions/{legacy.Id}", Ct).WaitAsync(Bound, Ct);
        var forAdmin = await factory.CreateClientFor("root", "admin").GetAsync($"/api/v1/executions/{legacy.Id}", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(forAlice, 404, "execution_not_found");
        Assert.Equal(HttpStatusCode.OK, forAdmin.StatusCode);
    }

    [Fact]
    public async Task Sse_AnotherSubjectsExecution_404BeforeAnyEvent_OwnerAndAdminGetTheEvents()
    {
        var factory = Replica();
        await using var producer = await StreamProducer.StartAsync(Database, Publisher(factory), Ct, owner: Alice);
        await producer.WriteAsync(3, Ct);
        await producer.FinishAsync(Ct);
        var path = StreamClient.SsePath(producer.ExecutionId);

        using var bobs = await factory.CreateClientFor(Bob).GetAsync(path, HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        var forBob = await AssertProblemAsync(bobs, 404, "execution_not_found");
        var forAlice = await ReadSseAsync(factory.CreateClientFor(Alice), path);
        var forAdmin = await ReadSseAsync(factory.CreateClientFor("root", "admin"), path);

        Assert.DoesNotContain("\"seq\"", forBob.ToString(), StringComparison.Ordinal);
        Assert.Equal(["1", "2", "3", "4"], forAlice);
        Assert.Equal(forAlice, forAdmin);
    }

    [Fact]
    public async Task WebSocket_AnotherSubjectsExecution_RefusedWith404BeforeTheUpgrade_OwnerStreamsIt()
    {
        var factory = Replica();
        await using var producer = await StreamProducer.StartAsync(Database, Publisher(factory), Ct, owner: Alice);
        await producer.WriteAsync(2, Ct);
        await producer.FinishAsync(Ct);
        var uri = new Uri(factory.Server.BaseAddress, StreamClient.WebSocketPath(producer.ExecutionId));

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            TestTokens.WebSockets(factory.Server, Bob).ConnectAsync(uri, Ct).WaitAsync(Bound, Ct));
        using var alice = await TestTokens.WebSockets(factory.Server, Alice).ConnectAsync(uri, Ct).WaitAsync(Bound, Ct);
        var events = await StreamClient.ReadToCloseAsync(alice, Ct);

        Assert.Contains("404", refused.Message, StringComparison.Ordinal);
        Assert.Equal(StreamClient.Seqs(1, 3), events.Select(e => e.Seq));
    }

    [Fact]
    public async Task WebSocket_RealSocket_AnotherSubjectsExecution_404ProblemNoUpgrade_LikeAnUnknownId()
    {
        var (factory, address) = KestrelReplica();
        await using var _ = factory;
        await using var producer = await StreamProducer.StartAsync(Database, Publisher(factory), Ct, owner: Alice);
        await producer.WriteAsync(2, Ct);
        using var bob = TestTokens.Socket(Bob);
        bob.Options.CollectHttpResponseDetails = true;
        using var unknown = TestTokens.Socket(Bob);
        unknown.Options.CollectHttpResponseDetails = true;
        using var alice = TestTokens.Socket(Alice);

        await Assert.ThrowsAsync<WebSocketException>(() =>
            bob.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId)), Ct).WaitAsync(Bound, Ct));
        await Assert.ThrowsAsync<WebSocketException>(() =>
            unknown.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(Guid.CreateVersion7())), Ct).WaitAsync(Bound, Ct));
        await alice.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId)), Ct).WaitAsync(Bound, Ct);
        var first = await StreamClient.ReceiveAsync(alice, Ct);

        Assert.Equal(HttpStatusCode.NotFound, bob.HttpStatusCode);
        Assert.False(bob.HttpResponseHeaders!.ContainsKey("Upgrade"));
        Assert.Equal(unknown.HttpStatusCode, bob.HttpStatusCode);
        Assert.Equal(1L, first!.Seq);
    }

    [Fact]
    public async Task History_EachSubjectListsOnlyItsOwn_AdminListsAllOrOneOwner()
    {
        var factory = Replica();
        var now = DateTimeOffset.UtcNow;
        var alices = new[] { Row(ExecutionStatus.Completed, now.AddMinutes(-3), owner: Alice), Row(ExecutionStatus.Failed, now.AddMinutes(-2), owner: Alice) };
        var bobs = new[] { Row(ExecutionStatus.Completed, now.AddMinutes(-1), owner: Bob) };
        var legacy = Row(ExecutionStatus.Completed, now.AddMinutes(-4), owner: "");
        await InsertAsync(Database, [.. alices, .. bobs, legacy], Ct);

        var forBob = await HistoryIdsAsync(factory.CreateClientFor(Bob), "");
        var forBobFailed = await HistoryIdsAsync(factory.CreateClientFor(Bob), "?status=failed");
        var forAlice = await HistoryIdsAsync(factory.CreateClientFor(Alice), "");
        var forAdmin = await HistoryIdsAsync(factory.CreateClientFor("root", "admin"), "");
        var forAdminAlice = await HistoryIdsAsync(factory.CreateClientFor("root", "admin"), "?owner=alice");
        var bobAsksForAlice = await factory.CreateClientFor(Bob).GetAsync("/api/v1/history?owner=alice", Ct).WaitAsync(Bound, Ct);

        Assert.Equal([bobs[0].Id], forBob);
        Assert.Empty(forBobFailed);
        Assert.Equal(alices.Select(r => r.Id).Reverse(), forAlice);
        Assert.Equal([bobs[0].Id, alices[1].Id, alices[0].Id, legacy.Id], forAdmin);
        Assert.Equal(alices.Select(r => r.Id).Reverse(), forAdminAlice);
        var problem = await AssertProblemAsync(bobAsksForAlice, 400, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("owner", out _));
    }

    [Fact]
    public async Task Metrics_EachSubjectCountsOnlyItsOwn_AdminCountsAll()
    {
        var factory = Replica();
        var rows = new List<ExecutionRecord>();
        // Whole days (the rollup) and a partial day at the window's end (read from the table), per owner.
        for (var i = 0; i < 3; i++)
            rows.Add(Row(ExecutionStatus.Completed, Day.AddHours(2 + i), owner: Alice, durationMs: 1000));
        rows.Add(Row(ExecutionStatus.Failed, Day.AddDays(1).AddHours(1), owner: Alice, durationMs: 1000));
        rows.Add(Row(ExecutionStatus.Completed, Day.AddHours(5), owner: Bob, durationMs: 4000));
        rows.Add(Row(ExecutionStatus.Running, Day.AddHours(6), owner: Bob));
        rows.Add(Row(ExecutionStatus.Completed, Day.AddHours(7), owner: "", durationMs: 2000));
        await InsertAsync(Database, rows, Ct);
        const string window = "?from=2026-11-21T00:00:00Z&to=2026-11-22T12:00:00Z";

        var bob = await MetricsAsync(factory.CreateClientFor(Bob), "");
        var bobInWindow = await MetricsAsync(factory.CreateClientFor(Bob), window);
        var alice = await MetricsAsync(factory.CreateClientFor(Alice), window);
        var admin = await MetricsAsync(factory.CreateClientFor("root", "admin"), window);
        var adminForBob = await MetricsAsync(factory.CreateClientFor("root", "admin"), "?owner=bob");

        Assert.Equal((2, 1, 0), Counts(bob));
        Assert.Equal(4000, bob.GetProperty("totals").GetProperty("duration_ms").GetProperty("p50").GetDouble());
        Assert.Equal(Counts(bob), Counts(bobInWindow));
        Assert.Equal((4, 3, 1), Counts(alice));
        Assert.Equal((7, 5, 1), Counts(admin));
        Assert.Equal(Counts(bob), Counts(adminForBob));
    }

    [Fact]
    public async Task Graphs_AnotherSubjectsGraph_InvisibleUnusableAndItsNameFreeForEachSubject()
    {
        var factory = Replica();
        var alice = factory.CreateClientFor(Alice);
        var bob = factory.CreateClientFor(Bob);
        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(alice, Graph("You write for alice."))).StatusCode);

        var bobGets = await bob.GetAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct);
        var bobLists = await JsonAsync(await bob.GetAsync("/api/v1/graphs", Ct).WaitAsync(Bound, Ct));
        var bobRuns = await PostJsonAsync(bob, """{"prompt": "p", "graph": "review-loop"}""");
        var bobDeletes = await bob.DeleteAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct);
        var bobReplaces = await RegisterAsync(bob, Graph("You write for bob."), "?replace=true");
        var bobRunsHis = await PostJsonAsync(bob, """{"prompt": "p", "graph": "review-loop"}""");
        var alicesNow = await JsonAsync(await alice.GetAsync("/api/v1/graphs/review-loop", Ct).WaitAsync(Bound, Ct));
        var adminLists = await JsonAsync(await factory.CreateClientFor("root", "admin").GetAsync("/api/v1/graphs", Ct).WaitAsync(Bound, Ct));

        await AssertProblemAsync(bobGets, 404, "graph_not_found");
        Assert.Equal(0, bobLists.GetProperty("graphs").GetArrayLength());
        await AssertProblemAsync(bobRuns, 404, "graph_not_found");
        await AssertProblemAsync(bobDeletes, 404, "graph_not_found");
        // Replacing what he cannot see registers his own graph of that name instead.
        Assert.Equal(HttpStatusCode.Created, bobReplaces.StatusCode);
        Assert.Equal(HttpStatusCode.OK, bobRunsHis.StatusCode);
        var sent = Assert.Single(Lab.Received, r => r.Path == "/orchestrate/");
        Assert.Contains("You write for bob.", sent.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("alice", sent.Body, StringComparison.Ordinal);
        Assert.Equal(1, alicesNow.GetProperty("version").GetInt32());
        Assert.Contains("for alice", alicesNow.GetProperty("definition").ToString(), StringComparison.Ordinal);
        Assert.Equal([(Alice, "review-loop"), (Bob, "review-loop")], adminLists.GetProperty("graphs").EnumerateArray()
            .Select(g => (g.GetProperty("owner").GetString(), g.GetProperty("name").GetString())).Order());
    }

    [Fact]
    public async Task IdempotencyKey_ReusedByAnotherSubject_MakesItsOwnExecution_EachGetsItsOwnBack()
    {
        var factory = Replica();
        const string body = """{"prompt": "Say hello"}""";

        var aliceFirst = await ExecuteAsync(factory.CreateClientFor(Alice), body, "key-1");
        var bobFirst = await ExecuteAsync(factory.CreateClientFor(Bob), body, "key-1");
        var bobAgain = await ExecuteAsync(factory.CreateClientFor(Bob), body, "key-1");
        var aliceAgain = await ExecuteAsync(factory.CreateClientFor(Alice), body, "key-1");

        Assert.NotEqual(aliceFirst, bobFirst);
        Assert.Equal(bobFirst, bobAgain);
        Assert.Equal(aliceFirst, aliceAgain);
        await using var db = Database.CreateContext();
        var owners = await db.Executions.AsNoTracking().OrderBy(e => e.Owner).Select(e => e.Owner).ToListAsync(Ct);
        Assert.Equal([Alice, Bob], owners);
    }

    private async Task<string> StatusAsync(Guid id)
    {
        await using var db = Database.CreateContext();
        return await db.Executions.AsNoTracking().Where(e => e.Id == id).Select(e => e.Status).SingleAsync(Ct);
    }

    /// <summary>The two 404s carry the same fields, status, code and title; only the id in the detail differs.</summary>
    private static void AssertSameShape(JsonElement expected, JsonElement actual, Guid actualId, Guid expectedId)
    {
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), actual.EnumerateObject().Select(p => p.Name).Order());
        foreach (var field in new[] { "status", "code", "title", "type" })
        {
            if (expected.TryGetProperty(field, out var value))
                Assert.Equal(value.ToString(), actual.GetProperty(field).ToString());
        }
        Assert.Equal(expected.GetProperty("detail").GetString()!.Replace(expectedId.ToString(), "ID", StringComparison.Ordinal),
            actual.GetProperty("detail").GetString()!.Replace(actualId.ToString(), "ID", StringComparison.Ordinal));
    }

    private static async Task<List<string>> ReadSseAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var ids = new List<string>();
        await foreach (var frame in StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct))
            ids.Add(frame.Id!);
        return ids;
    }

    private static async Task<List<Guid>> HistoryIdsAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync("/api/v1/history" + query, Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return [.. body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("execution_id").GetGuid())];
    }

    private static async Task<JsonElement> MetricsAsync(HttpClient client, string query)
    {
        var response = await client.GetAsync("/api/v1/metrics" + query, Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    private static (long Count, long Completed, long Failed) Counts(JsonElement metrics)
    {
        var totals = metrics.GetProperty("totals");
        return (totals.GetProperty("count").GetInt64(), totals.GetProperty("completed").GetInt64(), totals.GetProperty("failed").GetInt64());
    }

    private static string Graph(string writerRole) => $$"""
        {"name":"review-loop","entry":"writer","nodes":[
          {"name":"writer","role":"{{writerRole}}","output":"text"},
          {"name":"critic","role":"You review.","output":"verdict"}],
         "edges":[{"from":"writer","to":"critic"},{"from":"critic","to":"writer","when":"revise"},{"from":"critic","to":"$end","when":"pass"}]}
        """;

    private static Task<HttpResponseMessage> RegisterAsync(HttpClient client, string json, string query = "") =>
        client.PostAsync("/api/v1/graphs" + query, new StringContent(json, Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);

    private static async Task<string> ExecuteAsync(HttpClient client, string json, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Idempotency-Key", key);
        var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body.GetProperty("execution_id").GetString()!;
    }
}
