using System.Net;
using AgentLab.Backend.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static AgentLab.Tests.Backend.ExecutionLifecycleTests;

namespace AgentLab.Tests.Backend;

/// <summary>Idempotent submits, and executions left behind by a Backend that crashed or stopped. Real PostgreSQL.</summary>
public sealed class IdempotencyAndRecoveryTests : BackendTestBase
{
    private const string Body = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";

    private static readonly Dictionary<string, string?> FastSweep = new()
    {
        ["Execution:SweepIntervalSeconds"] = "0.2", ["Execution:LeaseSeconds"] = "3",
    };

    [Fact]
    public async Task Execute_SameKeySameBodyTwice_SameExecutionAndOneModelCall()
    {
        var client = Backend();

        var first = await JsonAsync(await PostWithKeyAsync(client, Body, "key-1"));
        var again = await PostWithKeyAsync(client, """{ "model": "mistral7b",  "prompt": "Dime 3 números primos" }""", "key-1");

        var second = await JsonAsync(again);
        Assert.True(again.StatusCode == HttpStatusCode.OK, $"expected 200, got {(int)again.StatusCode}: {second}");
        Assert.Equal(first.GetProperty("execution_id").GetString(), second.GetProperty("execution_id").GetString());
        Assert.Equal(first.GetProperty("output").GetString(), second.GetProperty("output").GetString());
        Assert.Single(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Execute_SameKeyOtherBody_UnprocessableIdempotencyKeyReused()
    {
        var client = Backend();
        var first = await JsonAsync(await PostWithKeyAsync(client, Body, "key-2"));

        var response = await PostWithKeyAsync(client, """{"prompt": "something else"}""", "key-2");

        var problem = await AssertProblemAsync(response, 422, "idempotency_key_reused");
        Assert.Equal(first.GetProperty("execution_id").GetString(), problem.GetProperty("execution_id").GetString());
        Assert.Single(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Execute_SameKeyWhileTheFirstIsRunning_SyncWaitsAsyncGets202_OneModelCall()
    {
        var release = new TaskCompletionSource();
        Lab.Inference = async ctx => { await release.Task.WaitAsync(Bound, ctx.RequestAborted); await FakeLabService.Json(200, FakeLabService.InferenceJson)(ctx); };
        var client = Backend();

        var first = PostWithKeyAsync(client, Body, "key-3");
        await WaitForAsync(() => Lab.Received.Any(r => r.Path == "/inference/"));
        var waiting = PostWithKeyAsync(client, Body, "key-3");
        var asyncDuplicate = await PostWithKeyAsync(client, Body, "key-3", prefer: "respond-async");
        release.SetResult();
        var firstAnswer = await JsonAsync(await first);
        var waitedAnswer = await waiting;

        Assert.Equal(HttpStatusCode.Accepted, asyncDuplicate.StatusCode);
        var accepted = await JsonAsync(asyncDuplicate);
        Assert.Equal(firstAnswer.GetProperty("execution_id").GetString(), accepted.GetProperty("execution_id").GetString());
        Assert.Equal("running", accepted.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, waitedAnswer.StatusCode);
        var waited = await JsonAsync(waitedAnswer);
        Assert.Equal(firstAnswer.GetProperty("execution_id").GetString(), waited.GetProperty("execution_id").GetString());
        Assert.Equal("completed", waited.GetProperty("status").GetString());
        Assert.Single(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Execute_ConcurrentSubmitsWithOneKey_OneExecutionOneModelCall()
    {
        var client = Backend();

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => PostWithKeyAsync(client, Body, "key-4")));

        var ids = new HashSet<string>();
        foreach (var answer in answers)
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            ids.Add((await JsonAsync(answer)).GetProperty("execution_id").GetString()!);
        }
        Assert.Single(ids);
        Assert.Single(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Sweeper_ExecutionsOfACrashedReplica_AreTakenOverAndFinished()
    {
        // Left by a Backend that died: one queued (never started), one mid-run (attempt 1), leases lapsed.
        var queued = Abandoned(ExecutionStatus.Queued, attempt: 0);
        var running = Abandoned(ExecutionStatus.Running, attempt: 1);
        await InsertAsync(queued, running);

        var client = Backend(FastSweep);

        var finishedQueued = await PollUntilAsync(client, queued.Id.ToString(), s => s == "completed");
        var finishedRunning = await PollUntilAsync(client, running.Id.ToString(), s => s == "completed");
        Assert.Equal(1, finishedQueued.GetProperty("attempt").GetInt32());
        Assert.Equal(2, finishedRunning.GetProperty("attempt").GetInt32());
        Assert.Equal(2, Lab.Received.Count(r => r.Path == "/inference/"));
    }

    [Fact]
    public async Task Heartbeat_RowThisReplicaOwnsButDropped_IsNotKeptAliveAndGetsRunByTheSweeper()
    {
        // A row leased by this very replica that none of its workers holds (as after a run that lost the database
        // mid-way): the heartbeat must let its lease lapse, or nobody would ever run it.
        var client = Backend(FastSweep, out var factory);
        var replica = factory.Services.GetRequiredService<AgentLab.Backend.Executions.ReplicaIdentity>().Id;
        var dropped = Abandoned(ExecutionStatus.Queued, attempt: 0);
        dropped.LeaseOwner = replica;
        dropped.LeaseExpiresAt = DateTimeOffset.UtcNow.AddSeconds(2);
        await InsertAsync(dropped);

        var finished = await PollUntilAsync(client, dropped.Id.ToString(), s => s == "completed");

        Assert.Equal(1, finished.GetProperty("attempt").GetInt32());
        Assert.Single(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Sweeper_RunThatLostItsReplicaAtTheLastAttempt_FailsWithWorkerLostWithoutRunning()
    {
        var exhausted = Abandoned(ExecutionStatus.Running, attempt: 2);
        await InsertAsync(exhausted);

        var client = Backend(new Dictionary<string, string?>(FastSweep) { ["Execution:MaxAttempts"] = "2" });

        var failed = await PollUntilAsync(client, exhausted.Id.ToString(), s => s != "running");
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Equal("worker_lost", failed.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain(Lab.Received, r => r.Path == "/inference/");
    }

    [Fact]
    public async Task Shutdown_WithAnAsyncRunInFlight_ReleasesItAndAnotherReplicaFinishesIt()
    {
        Lab.Inference = FakeLabService.Hang;
        var first = Backend(FastSweep, out var firstFactory);
        var accepted = await AssertAcceptedAsync(await PostJsonAsync(first, """{"prompt": "p", "mode": "async"}"""));
        var id = accepted.GetProperty("execution_id").GetString()!;
        await WaitForAsync(() => Lab.Received.Any(r => r.Path == "/inference/"));

        await firstFactory.DisposeAsync().AsTask().WaitAsync(Bound, Ct);
        Lab.Inference = FakeLabService.Json(200, FakeLabService.InferenceJson);
        var second = Backend(FastSweep);

        var finished = await PollUntilAsync(second, id, s => s == "completed");
        Assert.Equal(2, finished.GetProperty("attempt").GetInt32());
        Assert.Equal("2, 3 y 5", finished.GetProperty("output").GetString());
    }

    private static Task<HttpResponseMessage> PostWithKeyAsync(HttpClient client, string json, string key, string? prefer = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("Idempotency-Key", key);
        if (prefer is not null)
            request.Headers.Add("Prefer", prefer);
        return client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
    }

    private static ExecutionRecord Abandoned(string status, int attempt) => new()
    {
        Id = Guid.CreateVersion7(),
        // Read back through the API by the default test client: it must be that subject's.
        Owner = Support.TestTokens.DefaultSubject,
        ExecutionType = "simple",
        Mode = "async",
        Model = "mistral7b",
        Status = status,
        Request = """{"prompt":"Dime 3 números primos","model":"mistral7b","execution_type":"simple","mode":"async"}""",
        RequestHash = "h",
        CreatedAt = DateTimeOffset.UtcNow.AddMinutes(-1),
        StartedAt = status == ExecutionStatus.Running ? DateTimeOffset.UtcNow.AddMinutes(-1) : null,
        Attempt = attempt,
        LeaseOwner = "dead-host:4242:deadbeef",
        LeaseExpiresAt = DateTimeOffset.UtcNow.AddSeconds(-10),
    };

    private async Task InsertAsync(params ExecutionRecord[] records)
    {
        await using var db = Database.CreateContext();
        db.Executions.AddRange(records);
        await db.SaveChangesAsync(Ct);
    }
}
