using AgentLab.Backend.Events;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace AgentLab.Backend.Data;

/// <summary>
/// Reads and moves executions through their state machine (<see cref="ExecutionStatus"/>). Every move is one
/// conditional UPDATE (<c>WHERE status = ... AND lease_owner = ...</c>), so of two writers only one can win; a move
/// that writes several tables is one transaction inside the execution strategy, and is safe to repeat when a commit
/// that succeeded is reported as failed (the strategy then retries it, and finds its own work already done).
/// The lifecycle events a move writes are published (<see cref="ExecutionEventPublisher"/>) once it committed.
/// </summary>
public sealed class ExecutionStore(AgentLabDb db, TimeProvider time, ExecutionEventPublisher? publisher = null)
{
    // The events written by the current try of a move: a retried try starts over, so only the committed try's are published.
    private readonly List<ExecutionEvent> written = [];

    /// <summary>
    /// The outcome of <see cref="CreateAsync(ExecutionRecord, int?, CancellationToken)"/>: the new row, or the one an
    /// earlier submit with the same key made, or (<see cref="CapReached"/>) nothing, because the owner already had
    /// <see cref="OwnerActive"/> unfinished executions.
    /// </summary>
    public readonly record struct Created(ExecutionRecord Record, bool IsNew, int? OwnerActive = null)
    {
        public bool CapReached => OwnerActive is not null;
    }

    /// <summary>
    /// Records a new execution (queued, leased by <see cref="ExecutionRecord.LeaseOwner"/>) with its
    /// <c>execution_queued</c> event. With an idempotency key already taken, records nothing and returns that row.
    /// </summary>
    public Task<Created> CreateAsync(ExecutionRecord record, CancellationToken ct) => CreateAsync(record, null, ct);

    /// <summary>
    /// <see cref="CreateAsync(ExecutionRecord, CancellationToken)"/>, refusing (<see cref="Created.CapReached"/>) when
    /// the owner already has <paramref name="maxActivePerOwner"/> queued or running executions. The count and the
    /// insert are one transaction holding a per-owner advisory lock, so two submits (on any replicas) cannot both pass
    /// at the limit; a replay of an earlier submit (same Idempotency-Key) is answered with its row, never refused.
    /// </summary>
    public async Task<Created> CreateAsync(ExecutionRecord record, int? maxActivePerOwner, CancellationToken ct)
    {
        if (maxActivePerOwner is { } max)
            return await CreateCappedAsync(record, max, ct).ConfigureAwait(false);
        var strategy = db.Database.CreateExecutionStrategy();
        var queued = Event(record.Id, 1, EventTypes.ExecutionQueued, null, "{}");
        var created = await strategy.ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            db.Executions.Add(record);
            db.Events.Add(queued);
            try
            {
                await db.SaveChangesAsync(token).ConfigureAwait(false);
                return new Created(record, true);
            }
            catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } unique)
            {
                db.ChangeTracker.Clear();
                // A retried insert whose first commit did land finds its own row: that is still "new" to the caller.
                var existing = unique.ConstraintName == "executions_pkey"
                    ? await FindAsync(record.Id, token).ConfigureAwait(false)
                    : await db.Executions.AsNoTracking()
                        .FirstOrDefaultAsync(e => e.Owner == record.Owner && e.IdempotencyKey == record.IdempotencyKey, token).ConfigureAwait(false);
                if (existing is null)
                    throw;
                return new Created(existing, existing.Id == record.Id);
            }
        }, ct).ConfigureAwait(false);
        if (created.IsNew)
            publisher?.Publish(ExecutionEventLog.ToEvent(queued));
        return created;
    }

    private async Task<Created> CreateCappedAsync(ExecutionRecord record, int maxActivePerOwner, CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        var queued = Event(record.Id, 1, EventTypes.ExecutionQueued, null, "{}");
        var key = record.IdempotencyKey;
        var created = await strategy.ExecuteAsync(async token =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(token).ConfigureAwait(false);
            // Held until commit or rollback: one owner's submits take turns here, on every replica.
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({CapLockSpace}, hashtext({record.Owner}))", token).ConfigureAwait(false);

            // A replay (same key), or a retry whose first commit did land, gets its row back before anything is counted.
            var existing = await db.Executions.AsNoTracking()
                .FirstOrDefaultAsync(e => e.Id == record.Id || (key != null && e.Owner == record.Owner && e.IdempotencyKey == key), token)
                .ConfigureAwait(false);
            if (existing is not null)
                return new Created(existing, existing.Id == record.Id);

            var active = await db.Executions
                .CountAsync(e => e.Owner == record.Owner && (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running), token)
                .ConfigureAwait(false);
            if (active >= maxActivePerOwner)
                return new Created(record, false, active);

            db.Executions.Add(record);
            db.Events.Add(queued);
            try
            {
                await db.SaveChangesAsync(token).ConfigureAwait(false);
            }
            catch (DbUpdateException ex) when (ex.InnerException is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation })
            {
                // Keys are unique per owner and this owner's submits hold the lock, so this is a retried insert whose
                // first commit landed. EF Core rolled back to its savepoint, so the transaction can still read the row.
                db.ChangeTracker.Clear();
                var other = await db.Executions.AsNoTracking()
                    .FirstOrDefaultAsync(e => e.Id == record.Id || (e.Owner == record.Owner && e.IdempotencyKey == key), token).ConfigureAwait(false);
                if (other is null)
                    throw;
                return new Created(other, false);
            }
            await transaction.CommitAsync(token).ConfigureAwait(false);
            return new Created(record, true);
        }, ct).ConfigureAwait(false);
        if (created.IsNew)
            publisher?.Publish(ExecutionEventLog.ToEvent(queued));
        return created;
    }

    /// <summary>The first key of the cap's advisory locks (<c>pg_advisory_xact_lock(int, int)</c>), apart from other lock users.</summary>
    private const int CapLockSpace = 1820;

    public Task<ExecutionRecord?> FindAsync(Guid id, CancellationToken ct) =>
        db.Executions.AsNoTracking().FirstOrDefaultAsync(e => e.Id == id, ct);

    /// <summary>The node states of one execution, in flow order.</summary>
    public async Task<IReadOnlyList<NodeStateRecord>> NodesAsync(Guid id, CancellationToken ct) =>
        await db.NodeStates.AsNoTracking().Where(n => n.ExecutionId == id).OrderBy(n => n.Position).ToListAsync(ct).ConfigureAwait(false);

    /// <summary>
    /// <c>queued → running</c> (or a recovered <c>running</c> run started again) by the replica that holds the lease:
    /// counts the attempt and writes <c>execution_started</c>. False when it is no longer this replica's to run
    /// (cancelled meanwhile, finished, or taken over by another replica).
    /// </summary>
    public async Task<ExecutionRecord?> TryStartAsync(Guid id, string owner, TimeSpan lease, CancellationToken ct) =>
        (await TryStartRunAsync(id, owner, lease, ct).ConfigureAwait(false))?.Record;

    /// <summary>A started run: the row, and the seq of its <c>execution_started</c> (where its own events continue).</summary>
    public sealed record StartedRun(ExecutionRecord Record, long LastSeq);

    /// <summary><see cref="TryStartAsync"/>, also telling where the event log ends.</summary>
    public async Task<StartedRun?> TryStartRunAsync(Guid id, string owner, TimeSpan lease, CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        var record = await strategy.ExecuteInTransactionAsync(async token =>
        {
            db.ChangeTracker.Clear();
            written.Clear();
            var now = time.GetUtcNow();
            var started = await db.Executions
                .Where(e => e.Id == id && e.LeaseOwner == owner && (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Status, ExecutionStatus.Running)
                    .SetProperty(e => e.Attempt, e => e.Attempt + 1)
                    .SetProperty(e => e.StartedAt, e => e.StartedAt ?? now)
                    .SetProperty(e => e.LeaseExpiresAt, now + lease), token).ConfigureAwait(false);
            if (started == 0)
                return null;
            var record = await db.Executions.AsNoTracking().FirstAsync(e => e.Id == id, token).ConfigureAwait(false);
            await AppendEventAsync(id, EventTypes.ExecutionStarted, null, $$"""{"attempt":{{record.Attempt}}}""", token).ConfigureAwait(false);
            await AppendLogAsync(id, "information", $"Attempt {record.Attempt} started on {owner}.", token).ConfigureAwait(false);
            return record;
        },
        // Asked only when the commit's outcome is unknown: did it land?
        async token => await db.Executions.AnyAsync(e => e.Id == id && e.LeaseOwner == owner && e.Status == ExecutionStatus.Running, token).ConfigureAwait(false),
        ct).ConfigureAwait(false);
        if (record is null)
            return null;
        if (written.Count == 0)
        {
            // The commit was reported as failed but had landed (the verify step said so): read back what it wrote.
            record = await FindAsync(id, ct).ConfigureAwait(false) ?? record;
            var last = await db.Events.AsNoTracking().Where(e => e.ExecutionId == id).MaxAsync(e => (long?)e.Seq, ct).ConfigureAwait(false) ?? 0;
            return new StartedRun(record, last);
        }
        PublishWritten();
        return new StartedRun(record, written[^1].Seq);
    }

    /// <summary>
    /// <c>running → completed | failed | cancelled | timed_out</c>, with the node states and the terminal event, in one
    /// transaction. False when this replica no longer holds the run (another replica took it over, or it was cancelled):
    /// then nothing is written.
    /// </summary>
    public async Task<bool> FinishAsync(Guid id, string owner, ExecutionOutcome outcome, IReadOnlyList<NodeStateRecord> nodes, CancellationToken ct)
    {
        if (!ExecutionStatus.IsTerminal(outcome.Status))
            throw new ArgumentException($"'{outcome.Status}' is not a terminal status.", nameof(outcome));

        var strategy = db.Database.CreateExecutionStrategy();
        var finished = await strategy.ExecuteInTransactionAsync(async token =>
        {
            db.ChangeTracker.Clear();
            written.Clear();
            var now = time.GetUtcNow();
            var moved = await db.Executions
                .Where(e => e.Id == id && e.LeaseOwner == owner && e.Status == ExecutionStatus.Running)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Status, outcome.Status)
                    .SetProperty(e => e.Model, e => outcome.Model ?? e.Model)
                    .SetProperty(e => e.ModelServer, e => outcome.ModelServer ?? e.ModelServer)
                    .SetProperty(e => e.Output, outcome.Output)
                    .SetProperty(e => e.ErrorCode, outcome.ErrorCode)
                    .SetProperty(e => e.ErrorMessage, outcome.ErrorMessage)
                    .SetProperty(e => e.Flow, outcome.Flow)
                    .SetProperty(e => e.CompletedAt, now)
                    .SetProperty(e => e.DurationMs, outcome.DurationMs)
                    .SetProperty(e => e.TimeToFirstTokenMs, outcome.TimeToFirstTokenMs)
                    .SetProperty(e => e.LoadDurationMs, outcome.LoadDurationMs)
                    .SetProperty(e => e.PromptTokens, outcome.PromptTokens)
                    .SetProperty(e => e.CompletionTokens, outcome.CompletionTokens)
                    .SetProperty(e => e.TokensPerSecond, outcome.TokensPerSecond)
                    .SetProperty(e => e.ModelCalls, outcome.ModelCalls)
                    .SetProperty(e => e.LeaseOwner, (string?)null)
                    .SetProperty(e => e.LeaseExpiresAt, (DateTimeOffset?)null), token).ConfigureAwait(false);
            if (moved == 0)
                return false;

            // A recovered run writes its flow again from the start; the positions are the natural key.
            await db.NodeStates.Where(n => n.ExecutionId == id).ExecuteDeleteAsync(token).ConfigureAwait(false);
            db.NodeStates.AddRange(nodes.Select(n => { n.ExecutionId = id; return n; }));
            await db.SaveChangesAsync(token).ConfigureAwait(false);
            var data = outcome.ErrorCode is null ? "{}" : System.Text.Json.JsonSerializer.Serialize(
                new Dictionary<string, string?> { ["code"] = outcome.ErrorCode, ["message"] = outcome.ErrorMessage });
            await AppendEventAsync(id, EventTypes.ForTerminal(outcome.Status), null, data, token).ConfigureAwait(false);
            return true;
        },
        async token => await IsFinishedAsAsync(id, outcome.Status, token).ConfigureAwait(false),
        ct).ConfigureAwait(false);
        if (finished)
            await PublishWrittenOrStoredAsync(id, ct).ConfigureAwait(false);
        return finished;
    }

    /// <summary>
    /// <c>queued | running → cancelled</c> by anyone (the owner's runner notices at its next write). False when the
    /// execution is unknown or already finished.
    /// </summary>
    public async Task<bool> CancelAsync(Guid id, string reason, CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        var cancelled = await strategy.ExecuteInTransactionAsync(async token =>
        {
            db.ChangeTracker.Clear();
            written.Clear();
            var now = time.GetUtcNow();
            var moved = await db.Executions
                .Where(e => e.Id == id && (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.Status, ExecutionStatus.Cancelled)
                    .SetProperty(e => e.ErrorCode, "cancelled")
                    .SetProperty(e => e.ErrorMessage, reason)
                    .SetProperty(e => e.CompletedAt, now)
                    .SetProperty(e => e.LeaseOwner, (string?)null)
                    .SetProperty(e => e.LeaseExpiresAt, (DateTimeOffset?)null), token).ConfigureAwait(false);
            if (moved == 0)
                return false;
            await AppendLogAsync(id, "warning", $"Cancelled: {reason}", token).ConfigureAwait(false);
            await AppendEventAsync(id, EventTypes.ExecutionCancelled, null,
                System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["reason"] = reason }), token).ConfigureAwait(false);
            return true;
        },
        async token => await IsFinishedAsAsync(id, ExecutionStatus.Cancelled, token).ConfigureAwait(false),
        ct).ConfigureAwait(false);
        if (cancelled)
            await PublishWrittenOrStoredAsync(id, ct).ConfigureAwait(false);
        return cancelled;
    }

    /// <summary>
    /// Extends the leases of the unfinished executions this replica is working on (<paramref name="ids"/>); one
    /// statement per heartbeat. Rows it owns but no longer works on are left to lapse.
    /// </summary>
    public async Task<int> RenewLeasesAsync(string owner, IReadOnlyList<Guid> ids, TimeSpan lease, CancellationToken ct) =>
        ids.Count - (await RenewHeldLeasesAsync(owner, ids, lease, ct).ConfigureAwait(false)).Count;

    /// <summary>
    /// <see cref="RenewLeasesAsync"/>, answering with the ids that were NOT renewed: rows that are no longer this
    /// replica's (cancelled, finished, taken over after a lapse), whose runs here must stop. Still one statement.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> RenewHeldLeasesAsync(string owner, IReadOnlyList<Guid> ids, TimeSpan lease, CancellationToken ct)
    {
        if (ids.Count == 0)
            return [];
        var until = time.GetUtcNow() + lease;
        var all = ids.Distinct().ToArray();
        var renewed = await db.Database.SqlQuery<Guid>($"""
            UPDATE executions SET lease_expires_at = {until}
            WHERE lease_owner = {owner} AND id = ANY({all}) AND status IN ('queued', 'running')
            RETURNING id AS "Value"
            """).ToListAsync(ct).ConfigureAwait(false);
        return renewed.Count == all.Length ? [] : all.Except(renewed).ToList();
    }

    /// <summary>
    /// Lets go of this replica's unfinished executions at once (a graceful shutdown), so another replica's sweeper
    /// takes them over without waiting for the lease to lapse.
    /// </summary>
    public Task<int> ReleaseLeasesAsync(string owner, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return db.Executions
            .Where(e => e.LeaseOwner == owner && (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running))
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.LeaseExpiresAt, now), ct);
    }

    /// <summary>
    /// Takes over up to <paramref name="limit"/> unfinished executions whose lease lapsed (their replica crashed or
    /// stopped) and that may still be tried. Each takeover is a conditional update, so two sweepers never take the same.
    /// </summary>
    public async Task<IReadOnlyList<ExecutionRecord>> ClaimAbandonedAsync(string owner, TimeSpan lease, int maxAttempts, int limit, CancellationToken ct)
    {
        if (limit <= 0)
            return [];
        var now = time.GetUtcNow();
        var candidates = await db.Executions.AsNoTracking()
            .Where(e => (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running)
                && e.LeaseExpiresAt < now && e.Attempt < maxAttempts)
            .OrderBy(e => e.LeaseExpiresAt)
            .Select(e => new { e.Id, e.LeaseOwner, e.LeaseExpiresAt })
            .Take(limit)
            .ToListAsync(ct).ConfigureAwait(false);

        var claimed = new List<ExecutionRecord>(candidates.Count);
        foreach (var candidate in candidates)
        {
            var taken = await db.Executions
                .Where(e => e.Id == candidate.Id && e.LeaseOwner == candidate.LeaseOwner && e.LeaseExpiresAt == candidate.LeaseExpiresAt
                    && (e.Status == ExecutionStatus.Queued || e.Status == ExecutionStatus.Running))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(e => e.LeaseOwner, owner)
                    .SetProperty(e => e.LeaseExpiresAt, now + lease), ct).ConfigureAwait(false);
            if (taken == 1 && await FindAsync(candidate.Id, ct).ConfigureAwait(false) is { } record)
            {
                claimed.Add(record);
                await AppendLogAsync(record.Id, "warning",
                    $"Taken over by {owner}: the lease of {candidate.LeaseOwner ?? "(none)"} lapsed at {candidate.LeaseExpiresAt:O} " +
                    $"while it was {record.Status} (that replica stopped or lost the database).", ct).ConfigureAwait(false);
            }
        }
        return claimed;
    }

    /// <summary>
    /// <c>running → failed</c> (<c>worker_lost</c>) for runs whose lease lapsed after their last allowed attempt:
    /// the replicas that ran them died each time, so running it again would likely kill another.
    /// </summary>
    public async Task<IReadOnlyList<Guid>> FailExhaustedAsync(int maxAttempts, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var ids = await db.Executions.AsNoTracking()
            .Where(e => e.Status == ExecutionStatus.Running && e.LeaseExpiresAt < now && e.Attempt >= maxAttempts)
            .OrderBy(e => e.LeaseExpiresAt)
            .Select(e => new { e.Id, e.LeaseOwner, e.Attempt })
            .Take(100)
            .ToListAsync(ct).ConfigureAwait(false);
        var failed = new List<Guid>();
        foreach (var candidate in ids)
        {
            var outcome = new ExecutionOutcome
            {
                Status = ExecutionStatus.Failed,
                ErrorCode = "worker_lost",
                ErrorMessage = $"The Backend replica running this execution stopped before it finished, {candidate.Attempt} time(s) " +
                    $"(the limit is {maxAttempts}); it was not tried again. Submit it again if you still want it.",
            };
            // Take it over first (conditional), then finish it as its holder: the same two-writer rule as a run.
            var taken = await db.Executions
                .Where(e => e.Id == candidate.Id && e.LeaseOwner == candidate.LeaseOwner && e.Status == ExecutionStatus.Running && e.LeaseExpiresAt < now)
                .ExecuteUpdateAsync(s => s.SetProperty(e => e.LeaseOwner, "sweeper").SetProperty(e => e.LeaseExpiresAt, now), ct).ConfigureAwait(false);
            if (taken == 1 && await FinishAsync(candidate.Id, "sweeper", outcome, [], ct).ConfigureAwait(false))
            {
                failed.Add(candidate.Id);
                await AppendLogAsync(candidate.Id, "error", $"Failed with worker_lost: {candidate.LeaseOwner} stopped while running attempt {candidate.Attempt} of {maxAttempts}.", ct).ConfigureAwait(false);
            }
        }
        return failed;
    }

    private Task<bool> IsFinishedAsAsync(Guid id, string status, CancellationToken ct) =>
        db.Executions.AsNoTracking().AnyAsync(e => e.Id == id && e.Status == status, ct);

    /// <summary>
    /// One line of the execution's own log (<c>execution_logs</c>): what happened to the run itself (attempts, takeovers,
    /// cancellation), for a person reading its history; never prompt or output text.
    /// </summary>
    private Task AppendLogAsync(Guid id, string level, string message, CancellationToken ct) =>
        db.Database.ExecuteSqlAsync($"""
            INSERT INTO execution_logs (execution_id, ts, level, message) VALUES ({id}, {time.GetUtcNow()}, {level}, {message})
            """, ct);

    /// <summary>
    /// Appends one event with the next gap-free seq, inside the caller's transaction, and keeps what it wrote for
    /// publishing after the commit. Its writers are the lease holder and a cancel (which takes the row from it first).
    /// </summary>
    private async Task<ExecutionEvent> AppendEventAsync(Guid id, string type, string? node, string data, CancellationToken ct)
    {
        var rows = await db.Events.FromSql($"""
            INSERT INTO execution_events (execution_id, seq, type, node, data, ts)
            SELECT {id}, COALESCE(MAX(seq), 0) + 1, {type}, {node}, CAST({data} AS jsonb), {Now()}
            FROM execution_events WHERE execution_id = {id}
            RETURNING execution_id, seq, type, node, data, ts
            """).AsNoTracking().ToListAsync(ct).ConfigureAwait(false);
        var e = ExecutionEventLog.ToEvent(rows.Single());
        written.Add(e);
        return e;
    }

    private void PublishWritten()
    {
        foreach (var e in written)
            publisher?.Publish(e);
    }

    /// <summary>
    /// Publishes what the committed move wrote. When the strategy's verify step reported a commit that had landed,
    /// the try that wrote it is gone: its terminal event is read back instead.
    /// </summary>
    private async Task PublishWrittenOrStoredAsync(Guid id, CancellationToken ct)
    {
        if (written.Count > 0)
        {
            PublishWritten();
            return;
        }
        if (publisher is null)
            return;
        var last = await db.Events.AsNoTracking().Where(e => e.ExecutionId == id).OrderByDescending(e => e.Seq).FirstOrDefaultAsync(ct).ConfigureAwait(false);
        if (last is not null && EventTypes.IsTerminal(last.Type))
            publisher.Publish(ExecutionEventLog.ToEvent(last));
    }

    // PostgreSQL keeps microseconds: what is published must equal what a replay reads back.
    private DateTimeOffset Now()
    {
        var now = time.GetUtcNow();
        return now.AddTicks(-(now.Ticks % 10));
    }

    private ExecutionEventRecord Event(Guid id, long seq, string type, string? node, string data) =>
        new() { ExecutionId = id, Seq = seq, Type = type, Node = node, Data = data, Ts = Now() };
}

/// <summary>How a run ended, as written by <see cref="ExecutionStore.FinishAsync"/>.</summary>
public sealed class ExecutionOutcome
{
    public required string Status { get; init; }
    public string? Model { get; init; }
    public string? ModelServer { get; init; }
    public string? Output { get; init; }
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    public string? Flow { get; init; }
    public double? DurationMs { get; init; }
    public double? TimeToFirstTokenMs { get; init; }
    public double? LoadDurationMs { get; init; }
    public int? PromptTokens { get; init; }
    public int? CompletionTokens { get; init; }
    public double? TokensPerSecond { get; init; }
    public int ModelCalls { get; init; }
}

/// <summary>The event types of ARCHITECTURE.md's event log.</summary>
public static class EventTypes
{
    public const string ExecutionQueued = "execution_queued";
    public const string ExecutionStarted = "execution_started";
    public const string NodeStarted = "node_started";
    public const string Token = "token";
    public const string NodeCompleted = "node_completed";
    public const string NodeFailed = "node_failed";
    public const string Log = "log";
    public const string ExecutionCompleted = "execution_completed";
    public const string ExecutionFailed = "execution_failed";
    public const string ExecutionCancelled = "execution_cancelled";

    /// <summary>True for the events that end an execution's log.</summary>
    public static bool IsTerminal(string type) => type is ExecutionCompleted or ExecutionFailed or ExecutionCancelled;

    /// <summary>The event that ends a run in <paramref name="status"/> (a timeout is a failure with its own code).</summary>
    public static string ForTerminal(string status) => status switch
    {
        ExecutionStatus.Completed => ExecutionCompleted,
        ExecutionStatus.Cancelled => ExecutionCancelled,
        _ => ExecutionFailed,
    };
}
