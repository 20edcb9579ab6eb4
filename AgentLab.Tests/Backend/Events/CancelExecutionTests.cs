using System.Net;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Events;

/// <summary>
/// <c>POST /api/v1/executions/{id}/cancel</c>: the row ends cancelled with <c>execution_cancelled</c> last, and the
/// run stops wherever it runs (here, on another replica through Redis, or by the lease heartbeat without Redis).
/// </summary>
public sealed class CancelExecutionTests : BackendTestBase
{
    private const string SimpleBody = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";
    private const string AsyncBody = """{"prompt": "Dime 3 números primos", "model": "mistral7b", "mode": "async"}""";

    [Theory]
    [InlineData("0196f8a2-0000-7000-8000-000000000000")]
    [InlineData("not-a-guid")]
    public async Task Cancel_UnknownOrMalformedId_404ExecutionNotFound(string id)
    {
        var client = Backend();

        var response = await CancelAsync(client, id);

        await AssertProblemAsync(response, 404, "execution_not_found");
    }

    [Fact]
    public async Task Cancel_FinishedExecution_409ExecutionFinishedWithItsStatus()
    {
        var client = Backend();
        var id = (await JsonAsync(await PostJsonAsync(client, SimpleBody))).GetProperty("execution_id").GetString()!;

        var response = await CancelAsync(client, id);

        var problem = await AssertProblemAsync(response, 409, "execution_finished");
        Assert.Equal("completed", problem.GetProperty("status").GetString());
        Assert.Contains("completed", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancel_QueuedAsyncExecution_NeverRuns()
    {
        // One worker, held by a run that waits: the second execution stays queued behind it.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;
        Lab.Inference = async ctx =>
        {
            if (Interlocked.Increment(ref calls) == 1)
                await release.Task.WaitAsync(Bound, ctx.RequestAborted);
            await FakeLabService.InferenceNdjson("ok")(ctx);
        };
        var client = Backend(new Dictionary<string, string?> { ["Execution:MaxConcurrency"] = "1" });
        var blocking = await IdOfAsync(await PostJsonAsync(client, AsyncBody));
        await EventuallyAsync(() => Lab.Received.Any(r => r.Path == "/inference/"), "the first execution reached LabService");
        var queued = await IdOfAsync(await PostJsonAsync(client, AsyncBody));

        var response = await CancelAsync(client, queued);
        release.SetResult();
        // FIFO with one worker: once a later execution completed, the cancelled one has been taken and refused.
        var later = await IdOfAsync(await PostJsonAsync(client, AsyncBody));
        await WaitForStatusAsync(client, later, "completed");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await JsonAsync(response);
        Assert.Equal("cancelled", body.GetProperty("status").GetString());
        Assert.Equal("Cancelled by request.", body.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(2, Lab.Received.Count(r => r.Path == "/inference/"));
        Assert.Equal("completed", await StatusAsync(client, blocking));
        var events = await EventsAsync(Guid.Parse(queued));
        Assert.Equal(["execution_queued", "execution_cancelled"], events.Select(e => e.Type));
    }

    [Fact]
    public async Task Cancel_RunningSyncExecution_AbortsTheModelCallAndTheCallerGets409Cancelled()
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Lab.Inference = FakeLabService.InferenceThenHang(aborted, "Hola", " mundo");
        var client = Backend();
        var caller = PostJsonAsync(client, SimpleBody);
        var id = await RunningIdAsync();

        var response = await CancelAsync(client, id.ToString());
        await aborted.Task.WaitAsync(Bound, Ct);
        var answer = await caller;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("cancelled", (await JsonAsync(response)).GetProperty("status").GetString());
        var problem = await AssertProblemAsync(answer, 409, "cancelled");
        Assert.Equal("cancelled", problem.GetProperty("status").GetString());
        var events = await EventsAsync(id);
        EventWriteTests.AssertGapFree(events);
        Assert.Equal("execution_cancelled", events[^1].Type);
        Assert.Contains(events, e => e.Type == "token");
        Assert.Equal("cancelled", await StatusAsync(client, id.ToString()));
    }

    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task Cancel_PostedToAnotherReplica_StopsTheRunThroughRedis(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        await using var redis = await RedisServer.StartAsync(kind, Ct);
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Lab.Inference = FakeLabService.InferenceThenHang(aborted, "Hola");
        // A lease far longer than the test: only Redis can bring the cancel to the replica that runs it.
        var settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:redis"] = redis.ConnectionString,
            ["Execution:LeaseSeconds"] = "3600",
        };
        var runner = Backend(settings, out var runnerFactory);
        var other = Backend(settings, out var otherFactory);
        await runnerFactory.Services.GetRequiredService<CancelSignals>().Subscribed.WaitAsync(Bound, Ct);
        await otherFactory.Services.GetRequiredService<CancelSignals>().Subscribed.WaitAsync(Bound, Ct);
        var id = await IdOfAsync(await PostJsonAsync(runner, AsyncBody));
        await RunningIdAsync();

        var response = await CancelAsync(other, id);
        await aborted.Task.WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await EventuallyAsync(() => !runnerFactory.Services.GetRequiredService<RunningExecutions>().IsRunning(Guid.Parse(id)), "the run ended");
        var events = await EventsAsync(Guid.Parse(id));
        EventWriteTests.AssertGapFree(events);
        Assert.Equal("execution_cancelled", events[^1].Type);
        Assert.Equal("cancelled", await StatusAsync(runner, id));
    }

    [Fact]
    public async Task Cancel_PostedToAnotherReplicaWithoutRedis_TheLeaseHeartbeatStopsTheRun()
    {
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Lab.Inference = FakeLabService.InferenceThenHang(aborted, "Hola");
        var settings = new Dictionary<string, string?> { ["Execution:LeaseSeconds"] = "1.5" };
        var runner = Backend(settings, out var runnerFactory);
        var other = Backend(settings);
        var id = await IdOfAsync(await PostJsonAsync(runner, AsyncBody));
        await RunningIdAsync();

        var response = await CancelAsync(other, id);
        await aborted.Task.WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await EventuallyAsync(() => !runnerFactory.Services.GetRequiredService<RunningExecutions>().IsRunning(Guid.Parse(id)), "the run ended");
        var events = await EventsAsync(Guid.Parse(id));
        EventWriteTests.AssertGapFree(events);
        Assert.Equal("execution_cancelled", events[^1].Type);
        Assert.Equal("cancelled", await StatusAsync(runner, id));
    }

    private static Task<HttpResponseMessage> CancelAsync(HttpClient client, string id) =>
        client.PostAsync($"/api/v1/executions/{id}/cancel", null, Ct).WaitAsync(Bound, Ct);

    private static async Task<string> IdOfAsync(HttpResponseMessage response) =>
        (await AssertAcceptedAsync(response)).GetProperty("execution_id").GetString()!;

    private static async Task<string> StatusAsync(HttpClient client, string id) =>
        (await JsonAsync(await client.GetAsync($"/api/v1/executions/{id}", Ct).WaitAsync(Bound, Ct))).GetProperty("status").GetString()!;

    private static async Task WaitForStatusAsync(HttpClient client, string id, string status) =>
        await EventuallyAsync(async () => await StatusAsync(client, id) == status, $"execution {id} {status}");

    /// <summary>The one running execution, once it has stored its first token (stored alone, at once).</summary>
    private async Task<Guid> RunningIdAsync()
    {
        Guid id = default;
        await EventuallyAsync(async () =>
        {
            await using var db = Database.CreateContext();
            id = await db.Events.AsNoTracking().Where(e => e.Type == "token").Select(e => e.ExecutionId).FirstOrDefaultAsync(Ct);
            return id != default;
        }, "the run streamed its first token");
        return id;
    }

    private async Task<List<ExecutionEventRecord>> EventsAsync(Guid id)
    {
        await using var db = Database.CreateContext();
        return await db.Events.AsNoTracking().Where(e => e.ExecutionId == id).OrderBy(e => e.Seq).ToListAsync(Ct).WaitAsync(Bound, Ct);
    }

    private static Task EventuallyAsync(Func<bool> condition, string what) => EventuallyAsync(() => Task.FromResult(condition()), what);

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Bound);
        while (!await condition())
        {
            if (deadline.IsCancellationRequested)
                Assert.Fail($"Timed out waiting until {what}.");
            await Task.Delay(20, Ct);
        }
    }
}
