using AgentLab.Backend.Data;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend.Data;

/// <summary>The execution state machine on a real PostgreSQL database: every move conditional, one winner per race.</summary>
public sealed class ExecutionStoreTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private TestDatabase database = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => database = await SharedPostgres.CreateDatabaseAsync(Ct);

    public async ValueTask DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task Lifecycle_QueuedRunningCompleted_WritesOutcomeNodesAndGapFreeEvents()
    {
        var record = NewRecord("replica-a");
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);

        var created = await store.CreateAsync(record, Ct);
        var started = await store.TryStartAsync(record.Id, "replica-a", Lease, Ct);
        var finished = await store.FinishAsync(record.Id, "replica-a", Completed(), [Node()], Ct);

        Assert.True(created.IsNew);
        Assert.Equal(1, started!.Attempt);
        Assert.Equal(ExecutionStatus.Running, started.Status);
        Assert.True(finished);
        var stored = await store.FindAsync(record.Id, Ct);
        Assert.Equal(ExecutionStatus.Completed, stored!.Status);
        Assert.Equal("answer", stored.Output);
        Assert.Null(stored.LeaseOwner);
        Assert.Null(stored.LeaseExpiresAt);
        Assert.NotNull(stored.CompletedAt);
        Assert.Equal("inference", Assert.Single(await store.NodesAsync(record.Id, Ct)).Node);
        var events = await db.Events.AsNoTracking().Where(e => e.ExecutionId == record.Id).OrderBy(e => e.Seq).ToListAsync(Ct);
        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Seq));
        Assert.Equal([EventTypes.ExecutionQueued, EventTypes.ExecutionStarted, EventTypes.ExecutionCompleted], events.Select(e => e.Type));
    }

    [Fact]
    public async Task FinishAsync_TwoReplicasRace_ExactlyOneWinsAndOnlyItsOutcomeIsStored()
    {
        var record = NewRecord("replica-a");
        await using (var db = database.CreateContext())
        {
            var store = new ExecutionStore(db, TimeProvider.System);
            await store.CreateAsync(record, Ct);
            await store.TryStartAsync(record.Id, "replica-a", Lease, Ct);
        }

        // replica-b believes it holds the run too (a stale view); both finish at the same moment on their own connections.
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            await using var db = database.CreateContext();
            var store = new ExecutionStore(db, TimeProvider.System);
            var owner = i % 2 == 0 ? "replica-a" : "replica-b";
            var outcome = i % 2 == 0 ? Completed() : new ExecutionOutcome { Status = ExecutionStatus.Failed, ErrorCode = "model_error", ErrorMessage = "x" };
            return await store.FinishAsync(record.Id, owner, outcome, [Node()], Ct);
        }));

        Assert.Equal(1, results.Count(r => r));
        await using var check = database.CreateContext();
        var stored = await check.Executions.AsNoTracking().SingleAsync(e => e.Id == record.Id, Ct);
        Assert.Equal(ExecutionStatus.Completed, stored.Status);
        Assert.Equal(1, await check.Events.CountAsync(e => e.ExecutionId == record.Id && e.Type == EventTypes.ExecutionCompleted, Ct));
        Assert.Equal(1, await check.NodeStates.CountAsync(n => n.ExecutionId == record.Id, Ct));
    }

    [Fact]
    public async Task CancelAsync_WhileRunning_WinsAndTheRunnersOutcomeIsDiscarded()
    {
        var record = NewRecord("replica-a");
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);
        await store.CreateAsync(record, Ct);
        await store.TryStartAsync(record.Id, "replica-a", Lease, Ct);

        var cancelled = await store.CancelAsync(record.Id, "stopped by a test", Ct);
        var finished = await store.FinishAsync(record.Id, "replica-a", Completed(), [Node()], Ct);
        var cancelledAgain = await store.CancelAsync(record.Id, "again", Ct);

        Assert.True(cancelled);
        Assert.False(finished);
        Assert.False(cancelledAgain);
        var stored = await store.FindAsync(record.Id, Ct);
        Assert.Equal(ExecutionStatus.Cancelled, stored!.Status);
        Assert.Null(stored.Output);
    }

    [Fact]
    public async Task TryStartAsync_ByAReplicaThatDoesNotHoldTheLease_StartsNothing()
    {
        var record = NewRecord("replica-a");
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);
        await store.CreateAsync(record, Ct);

        var started = await store.TryStartAsync(record.Id, "replica-b", Lease, Ct);

        Assert.Null(started);
        Assert.Equal(ExecutionStatus.Queued, (await store.FindAsync(record.Id, Ct))!.Status);
    }

    [Fact]
    public async Task CreateAsync_SameIdempotencyKeyTwice_ReturnsTheFirstRowAndWritesOne()
    {
        var first = NewRecord("replica-a", key: "key-1");
        var second = NewRecord("replica-b", key: "key-1");
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);

        var a = await store.CreateAsync(first, Ct);
        var b = await store.CreateAsync(second, Ct);

        Assert.True(a.IsNew);
        Assert.False(b.IsNew);
        Assert.Equal(first.Id, b.Record.Id);
        Assert.Equal(1, await db.Executions.CountAsync(Ct));
    }

    [Fact]
    public async Task ClaimAbandonedAsync_TwoSweepersAtOnce_EachLapsedExecutionTakenExactlyOnce()
    {
        var lapsed = Enumerable.Range(0, 6).Select(_ => NewRecord("dead-replica", leaseExpiresIn: TimeSpan.FromSeconds(-5))).ToList();
        var alive = NewRecord("live-replica");
        await using (var db = database.CreateContext())
        {
            var store = new ExecutionStore(db, TimeProvider.System);
            foreach (var record in lapsed.Append(alive))
                await store.CreateAsync(record, Ct);
        }

        var claims = await Task.WhenAll(new[] { "sweeper-1", "sweeper-2" }.Select(async owner =>
        {
            await using var db = database.CreateContext();
            return await new ExecutionStore(db, TimeProvider.System).ClaimAbandonedAsync(owner, Lease, maxAttempts: 3, limit: 10, Ct);
        }));

        var taken = claims.SelectMany(c => c.Select(r => r.Id)).ToList();
        Assert.Equal(lapsed.Select(r => r.Id).Order(), taken.Order());
        await using (var logs = database.CreateContext())
        {
            var takeovers = await logs.Logs.AsNoTracking().Where(l => l.Message.StartsWith("Taken over by")).ToListAsync(Ct);
            Assert.Equal(lapsed.Select(r => r.Id).Order(), takeovers.Select(l => l.ExecutionId).Order());
            Assert.All(takeovers, l => Assert.Contains("dead-replica", l.Message, StringComparison.Ordinal));
        }
        Assert.DoesNotContain(alive.Id, taken);
        await using var check = database.CreateContext();
        Assert.Equal("live-replica", (await check.Executions.AsNoTracking().SingleAsync(e => e.Id == alive.Id, Ct)).LeaseOwner);
    }

    [Fact]
    public async Task FailExhaustedAsync_LapsedAfterTheLastAttempt_FailsWithWorkerLost()
    {
        var exhausted = NewRecord("dead-replica", leaseExpiresIn: TimeSpan.FromSeconds(-5));
        var retryable = NewRecord("dead-replica", leaseExpiresIn: TimeSpan.FromSeconds(-5));
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);
        await store.CreateAsync(exhausted, Ct);
        await store.CreateAsync(retryable, Ct);
        await db.Executions.Where(e => e.Id == exhausted.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, ExecutionStatus.Running).SetProperty(e => e.Attempt, 3), Ct);
        await db.Executions.Where(e => e.Id == retryable.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, ExecutionStatus.Running).SetProperty(e => e.Attempt, 2), Ct);

        var failed = await store.FailExhaustedAsync(maxAttempts: 3, Ct);

        Assert.Equal([exhausted.Id], failed);
        var stored = await store.FindAsync(exhausted.Id, Ct);
        Assert.Equal(ExecutionStatus.Failed, stored!.Status);
        Assert.Equal("worker_lost", stored.ErrorCode);
        Assert.Contains("3 time(s)", stored.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(ExecutionStatus.Running, (await store.FindAsync(retryable.Id, Ct))!.Status);
    }

    [Fact]
    public async Task RenewLeasesAsync_OnlyTheHeldRowsOfThisReplica_GetALaterExpiry()
    {
        var mine = NewRecord("replica-a", leaseExpiresIn: TimeSpan.FromSeconds(2));
        var mineButDropped = NewRecord("replica-a", leaseExpiresIn: TimeSpan.FromSeconds(2));
        var theirs = NewRecord("replica-b", leaseExpiresIn: TimeSpan.FromSeconds(2));
        await using var db = database.CreateContext();
        var store = new ExecutionStore(db, TimeProvider.System);
        foreach (var record in new[] { mine, mineButDropped, theirs })
            await store.CreateAsync(record, Ct);

        // replica-b's id is passed too: ownership still decides.
        var renewed = await store.RenewLeasesAsync("replica-a", [mine.Id, theirs.Id], TimeSpan.FromMinutes(10), Ct);

        Assert.Equal(1, renewed);
        Assert.True((await store.FindAsync(mine.Id, Ct))!.LeaseExpiresAt > DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.True((await store.FindAsync(mineButDropped.Id, Ct))!.LeaseExpiresAt < DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.True((await store.FindAsync(theirs.Id, Ct))!.LeaseExpiresAt < DateTimeOffset.UtcNow.AddMinutes(1));
    }

    [Fact]
    public async Task Schema_FinishedRowWithALease_IsRejectedByTheCheckConstraint()
    {
        var record = NewRecord("replica-a");
        record.Status = ExecutionStatus.Completed;
        await using var db = database.CreateContext();

        db.Executions.Add(record);

        var error = await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync(Ct));
        Assert.Contains("executions_lease_check", error.InnerException?.Message, StringComparison.Ordinal);
    }

    private static ExecutionRecord NewRecord(string owner, string? key = null, TimeSpan? leaseExpiresIn = null) => new()
    {
        Id = Guid.CreateVersion7(),
        ExecutionType = "simple",
        Mode = "async",
        Model = "mistral7b",
        Status = ExecutionStatus.Queued,
        Request = """{"prompt":"p"}""",
        RequestHash = "hash",
        IdempotencyKey = key,
        CreatedAt = DateTimeOffset.UtcNow,
        LeaseOwner = owner,
        LeaseExpiresAt = DateTimeOffset.UtcNow + (leaseExpiresIn ?? Lease),
    };

    private static ExecutionOutcome Completed() => new()
    {
        Status = ExecutionStatus.Completed, Output = "answer", Model = "mistral:7b", ModelServer = "simulator", DurationMs = 12, ModelCalls = 1,
    };

    private static NodeStateRecord Node() => new() { Node = "inference", Position = 0, Status = ExecutionStatus.Completed, Attempt = 1 };
}
