using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend.Orchestrator;

/// <summary><c>execution_type: "orchestrator"</c> through the Backend against a fake LabService that streams scripted NDJSON.</summary>
public sealed class OrchestratorExecutionTests : BackendTestBase
{
    private const string Body = """
        {"prompt": "¿Cuánto es 6 × 7?", "model": "mistral7b", "execution_type": "orchestrator",
         "agents": ["analyzer", "executor", "validator"], "tools": ["calculator"], "parameters": {"temperature": 0.2, "timeout_seconds": 60}}
        """;

    private static readonly Dictionary<string, string?> FastResume = new()
    {
        ["Orchestrator:ResumeDelaySeconds"] = "0",
        ["Orchestrator:MaxResumeDelaySeconds"] = "0",
    };

    [Fact]
    public async Task Execute_OrchestratorSync_AnswersWithStreamedFlowAndStoresIt()
    {
        var client = Backend();

        var response = await PostJsonAsync(client, Body);

        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("orchestrator", body.GetProperty("execution_type").GetString());
        Assert.Equal("final answer", body.GetProperty("output").GetString());
        Assert.Equal(["analyzer", "executor", "validator"], Names(body));
        Assert.Equal(3, body.GetProperty("flow").GetProperty("edges").GetArrayLength());
        Assert.Equal(3, body.GetProperty("metrics").GetProperty("model_calls").GetInt32());
        Assert.Equal(15, body.GetProperty("metrics").GetProperty("prompt_tokens").GetInt32());
        var sent = Assert.Single(Lab.Received, r => r.Path == "/orchestrate/");
        Assert.Contains("application/x-ndjson", sent.Accept);
        using var request = JsonDocument.Parse(sent.Body);
        Assert.Equal("calculator", request.RootElement.GetProperty("tools")[0].GetString());
        Assert.Equal(3, request.RootElement.GetProperty("agents").GetArrayLength());
        Assert.False(request.RootElement.TryGetProperty("previous_nodes", out _));
        await using var db = Database.CreateContext();
        var runs = await db.NodeStates.Where(n => n.Run != null).CountAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(3, runs);
    }

    [Fact]
    public async Task Execute_OrchestratorAsync_CompletesInBackground()
    {
        var client = Backend();

        var accepted = await PostJsonAsync(client, Body.Replace("\"execution_type\"", "\"mode\": \"async\", \"execution_type\""));
        var id = (await JsonAsync(accepted)).GetProperty("execution_id").GetString();
        var done = await WaitForStatusAsync(client, id!, s => s is "completed" or "failed");

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal("completed", done.GetProperty("status").GetString());
        Assert.Equal(["analyzer", "executor", "validator"], Names(done));
    }

    [Fact]
    public async Task Execute_OrchestratorMidRun_NodeStatesAppearAsNodesComplete()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = FakeLabService.OrchestrateEvents(["analyzer", "executor"]);
        Lab.Orchestrate = async ctx =>
        {
            await FakeLabService.StartNdjsonAsync(ctx);
            await FakeLabService.WriteLineAsync(ctx, lines[0]);
            await FakeLabService.WriteLineAsync(ctx, lines[1]);
            await release.Task.WaitAsync(ctx.RequestAborted);
            foreach (var line in lines.Skip(2))
                await FakeLabService.WriteLineAsync(ctx, line);
        };
        var client = Backend();

        var accepted = await PostJsonAsync(client, Body.Replace("\"execution_type\"", "\"mode\": \"async\", \"execution_type\""));
        var id = Guid.Parse((await JsonAsync(accepted)).GetProperty("execution_id").GetString()!);
        var midRun = await WaitForAsync(async () =>
        {
            await using var db = Database.CreateContext();
            var nodes = await db.NodeStates.Where(n => n.ExecutionId == id).Select(n => n.Node).ToListAsync(Ct);
            return nodes.Count > 0 ? nodes : null;
        });
        string? statusMidRun;
        await using (var db = Database.CreateContext())
            statusMidRun = await db.Executions.Where(e => e.Id == id).Select(e => e.Status).SingleAsync(Ct).WaitAsync(Bound, Ct);
        release.SetResult();
        var done = await WaitForStatusAsync(client, id.ToString(), s => s is "completed" or "failed");

        Assert.Equal(["analyzer"], midRun);
        Assert.Equal("running", statusMidRun);
        Assert.Equal(["analyzer", "executor"], Names(done));
    }

    [Fact]
    public async Task Execute_StreamBreaksMidRun_ResumesWithCompletedNodesOnly()
    {
        var calls = 0;
        string[] names = ["analyzer", "executor", "validator"];
        var runs = names.Select(n => FakeLabService.NodeRunJson(n, $"{n} output")).ToArray();
        Lab.Orchestrate = async ctx =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                await FakeLabService.StartNdjsonAsync(ctx);
                await FakeLabService.WriteLineAsync(ctx, FakeLabService.NodeCompletedEvent(1, runs[0], names[0]));
                await FakeLabService.WriteLineAsync(ctx, FakeLabService.NodeCompletedEvent(2, runs[1], names[1]));
                await FakeLabService.WriteLineAsync(ctx, """{"seq":3,"type":"node_started","node":"validator","attempt":1,"step":3}""");
                // A reset can discard what the Backend has not read yet: die once both nodes are persisted.
                await NodeCountAsync(2);
                ctx.Abort();   // LabService dies mid-run
                return;
            }
            var restored = names.Take(2).Select(n => FakeLabService.NodeRunJson(n, $"{n} output", restored: true)).Append(runs[2]).ToList();
            await FakeLabService.Ndjson(
                FakeLabService.NodeCompletedEvent(1, restored[0], names[0]),
                FakeLabService.NodeCompletedEvent(2, restored[1], names[1]),
                FakeLabService.NodeCompletedEvent(3, restored[2], names[2]),
                FakeLabService.CompletedEvent(4, restored, names))(ctx);
        };
        var client = Backend(FastResume);

        var response = await PostJsonAsync(client, Body);

        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        var requests = Lab.Received.Where(r => r.Path == "/orchestrate/").ToList();
        Assert.Equal(2, requests.Count);
        using var second = JsonDocument.Parse(requests[1].Body);
        var previous = second.RootElement.GetProperty("previous_nodes").EnumerateArray().ToList();
        Assert.Equal(["analyzer", "executor"], previous.Select(p => p.GetProperty("name").GetString()));
        Assert.Equal("analyzer output", previous[0].GetProperty("output").GetString());
        Assert.Equal(5, previous[0].GetProperty("metrics").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(["analyzer", "executor", "validator"], Names(body));
        Assert.Equal(3, body.GetProperty("metrics").GetProperty("model_calls").GetInt32());
    }

    [Fact]
    public async Task Execute_StreamBreaksEveryTime_FailsLabUnavailableAfterResumes()
    {
        Lab.Orchestrate = async ctx =>
        {
            await FakeLabService.StartNdjsonAsync(ctx);
            await FakeLabService.WriteLineAsync(ctx, FakeLabService.NodeCompletedEvent(1, FakeLabService.NodeRunJson("analyzer", "a"), "analyzer"));
            await NodeCountAsync(1);
            ctx.Abort();
        };
        var client = Backend(new Dictionary<string, string?>(FastResume) { ["Orchestrator:ResumeAttempts"] = "2" });

        var response = await PostJsonAsync(client, Body);

        await AssertProblemAsync(response, 503, "lab_unavailable");
        Assert.Equal(3, Lab.Received.Count(r => r.Path == "/orchestrate/"));
        await using var db = Database.CreateContext();
        var row = await db.Executions.SingleAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal("failed", row.Status);
        Assert.Equal("analyzer", (await db.NodeStates.SingleAsync(Ct).WaitAsync(Bound, Ct)).Node);
    }

    [Fact]
    public async Task Execute_ErrorEvent_ProblemWithCodeAndStoredFailure()
    {
        var analyzer = FakeLabService.NodeRunJson("analyzer", "plan");
        var failed = """{"name":"executor","status":"failed","attempt":1,"started_at":"2026-11-22T10:00:01+00:00","duration_ms":5,"metrics":{"model_calls":1},"error":{"code":"model_unavailable","message":"the model server is down"}}""";
        Lab.Orchestrate = FakeLabService.Ndjson(
            FakeLabService.NodeCompletedEvent(1, analyzer, "analyzer"),
            $$"""{"seq":2,"type":"error","error":{"code":"model_unavailable","message":"The model server is unreachable.","status":503},"data":{"model":"mistral:7b","model_server":"simulator","flow":{"nodes":[{{analyzer}},{{failed}}],"edges":[{"from":"analyzer","to":"executor","step":1}],"iterations":0},"metrics":{"total_duration_ms":10,"model_calls":2,"prompt_tokens":5,"completion_tokens":3,"tool_calls":0,"steps":2},"stop_reason":{"code":"node_failed","message":"executor failed","node":"executor","error_code":"model_unavailable"}""" + "}}");
        var client = Backend();

        var response = await PostJsonAsync(client, Body);

        var problem = await AssertProblemAsync(response, 503, "model_unavailable");
        Assert.Equal("executor", problem.GetProperty("stop_reason").GetProperty("node").GetString());
        Assert.Single(Lab.Received, r => r.Path == "/orchestrate/");
        await using var db = Database.CreateContext();
        var row = await db.Executions.SingleAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal(("failed", "model_unavailable"), (row.Status, row.ErrorCode));
        var nodes = await db.NodeStates.OrderBy(n => n.Position).ToListAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal([("analyzer", "completed"), ("executor", "failed")], nodes.Select(n => (n.Node, n.Status)));
        Assert.Equal("model_unavailable", nodes[1].ErrorCode);
    }

    [Theory]
    [InlineData("step_limit", null, "failed", 502)]
    [InlineData("budget_exhausted", "tokens", "failed", 502)]
    [InlineData("budget_exhausted", "wall_time", "timed_out", 504)]
    [InlineData("invalid_verdict", null, "failed", 502)]
    [InlineData("cancelled", null, "cancelled", 409)]
    public async Task Execute_StopReason_MapsToStatus(string stopCode, string? budget, string status, int httpStatus)
    {
        Lab.Orchestrate = FakeLabService.Ndjson(FakeLabService.OrchestrateEvents(["analyzer"], stopCode, budget));
        var client = Backend();

        var response = await PostJsonAsync(client, Body);

        var problem = await AssertProblemAsync(response, httpStatus, stopCode);
        Assert.Equal(status, problem.GetProperty("status").GetString());
        await using var db = Database.CreateContext();
        var row = await db.Executions.SingleAsync(Ct).WaitAsync(Bound, Ct);
        Assert.Equal((status, stopCode), (row.Status, row.ErrorCode));
        Assert.Null(row.Output);
    }

    private Task<string> NodeCountAsync(int atLeast) => WaitForAsync(async () =>
    {
        await using var db = Database.CreateContext();
        var count = await db.NodeStates.CountAsync(Ct);
        return count >= atLeast ? "persisted" : null;
    });

    private static List<string?> Names(JsonElement result) =>
        [.. result.GetProperty("flow").GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString())];

    private static async Task<JsonElement> WaitForStatusAsync(HttpClient client, string id, Func<string?, bool> done) =>
        await WaitForAsync(async () =>
        {
            using var response = await client.GetAsync($"/api/v1/executions/{id}", Ct);
            var body = await JsonAsync(response);
            return done(body.GetProperty("status").GetString()) ? (JsonElement?)body : null;
        }) ?? default;

    private static async Task<T> WaitForAsync<T>(Func<Task<T?>> probe)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Bound);
        while (true)
        {
            if (await probe().WaitAsync(Bound, Ct) is { } value)
                return value;
            await Task.Delay(50, deadline.Token);
        }
    }
}
