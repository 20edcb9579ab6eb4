using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace AgentLab.Backend.Data.Retention;

/// <summary>
/// Keeps the execution tables bounded: every <see cref="RetentionOptions.IntervalSeconds"/> it deletes finished
/// executions past <see cref="RetentionOptions.MaxAgeDays"/>, then the oldest finished ones beyond
/// <see cref="RetentionOptions.MaxExecutions"/>, then compacts the token events of executions finished more than
/// <see cref="RetentionOptions.CompactEventsAfterMinutes"/> ago (<see cref="EventCompaction"/>). Work goes in small
/// batches, each its own statement, so stopping between two loses nothing and a big cleanup never holds long locks.
/// Several replicas may run it: a pass first takes a PostgreSQL advisory lock, and a replica that cannot get it skips
/// the pass. A database that is down costs a warning, never the host.
/// </summary>
public sealed class RetentionJob(
    IServiceScopeFactory scopes, IOptions<RetentionOptions> options, DatabaseState state, TimeProvider time,
    ILogger<RetentionJob> logger) : BackgroundService
{
    /// <summary>The advisory-lock key of a pass ("AGLBRETN"); advisory locks are per database, so one key is enough.</summary>
    public const long LockKey = 0x4147_4C42_5245_544E;

    private static readonly TimeSpan SchemaPoll = TimeSpan.FromSeconds(1);

    /// <summary>Literal, not a parameter, so the planner can match it to the partial indexes' predicates.</summary>
    internal static readonly string FinishedFilter =
        $"status IN ({string.Join(", ", ExecutionStatus.Terminal.Select(s => $"'{s}'"))})";

    // Oldest first through executions_created_idx; SKIP LOCKED so a batch never waits behind another writer.
    private static readonly string DeleteOlderThanSql = $"""
        DELETE FROM executions WHERE id IN (
            SELECT id FROM executions
            WHERE created_at < @cutoff AND {FinishedFilter}
            ORDER BY created_at, id
            LIMIT @batch
            FOR UPDATE SKIP LOCKED)
        """;

    private static readonly string DeleteOldestSql = $"""
        DELETE FROM executions WHERE id IN (
            SELECT id FROM executions
            WHERE {FinishedFilter}
            ORDER BY created_at, id
            LIMIT @batch
            FOR UPDATE SKIP LOCKED)
        """;

    /// <summary>
    /// One pass now: deletes by age, then by count, then compacts events. Never throws for a database that is down or
    /// a failed statement: the result says what happened (and what was done before it failed), and it is logged.
    /// Throws only <see cref="OperationCanceledException"/> when <paramref name="ct"/> is cancelled.
    /// </summary>
    public async Task<RetentionResult> RunOnceAsync(CancellationToken ct)
    {
        var settings = options.Value;
        var started = time.GetTimestamp();
        var progress = new Progress();
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
            db.Database.SetCommandTimeout(TimeSpan.FromSeconds(settings.CommandTimeoutSeconds));

            await using var passLock = await PassLock.TryTakeAsync(db.Database.GetConnectionString()!, ct).ConfigureAwait(false);
            if (passLock is null)
            {
                logger.RetentionSkippedLockHeld();
                return progress.ToResult(RetentionPassStatus.SkippedLockHeld, time.GetElapsedTime(started), null);
            }

            await DeleteOlderThanAsync(db, settings, progress, ct).ConfigureAwait(false);
            await DeleteBeyondCapAsync(db, settings, progress, ct).ConfigureAwait(false);
            await CompactAsync(db, settings, progress, ct).ConfigureAwait(false);

            var result = progress.ToResult(RetentionPassStatus.Completed, time.GetElapsedTime(started), null);
            if (result.DidSomething)
            {
                logger.RetentionPassCompleted(result.DeletedByAge, settings.MaxAgeDays, result.DeletedByCount, settings.MaxExecutions,
                    result.ExecutionsCompacted, result.TokenEventsMerged, result.DeleteStatements, result.Elapsed.TotalMilliseconds);
            }
            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutting down: whatever batch was in flight either committed or did not; both are fine.
            throw;
        }
        catch (Exception ex) when (ct.IsCancellationRequested)
        {
            // Npgsql may report a command cancelled mid-flight as its own exception.
            throw new OperationCanceledException("The retention pass was stopped.", ex, ct);
        }
        catch (Exception ex) when (DatabaseErrors.IsUnavailable(ex))
        {
            var reason = DatabaseErrors.Describe(ex);
            logger.RetentionDatabaseUnavailable(reason, settings.IntervalSeconds);
            return progress.ToResult(RetentionPassStatus.DatabaseUnavailable, time.GetElapsedTime(started),
                $"PostgreSQL is unreachable ({reason}); the next pass tries again.");
        }
        catch (Exception ex)
        {
            logger.RetentionPassFailed(ex, settings.IntervalSeconds);
            return progress.ToResult(RetentionPassStatus.Failed, time.GetElapsedTime(started),
                $"The retention pass failed: {DatabaseErrors.Describe(ex)}");
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            logger.RetentionDisabled();
            return;
        }
        logger.RetentionScheduled(settings.MaxAgeDays, settings.MaxExecutions, settings.CompactEventsAfterMinutes, settings.IntervalSeconds);

        try
        {
            // Before the migration step is done the tables (or this job's column) may not exist yet.
            while (!state.IsReady)
                await Task.Delay(SchemaPoll, time, stoppingToken).ConfigureAwait(false);

            while (true)
            {
                await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromSeconds(settings.IntervalSeconds), time, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
    }

    private async Task DeleteOlderThanAsync(AgentLabDb db, RetentionOptions settings, Progress progress, CancellationToken ct)
    {
        var cutoff = time.GetUtcNow() - TimeSpan.FromDays(settings.MaxAgeDays);
        while (true)
        {
            var deleted = await DeleteBatchAsync(db, DeleteOlderThanSql, settings.BatchSize, cutoff, progress, ct).ConfigureAwait(false);
            progress.DeletedByAge += deleted;
            if (deleted < settings.BatchSize)
                return;
            await PauseAsync(settings, ct).ConfigureAwait(false);
        }
    }

    private async Task DeleteBeyondCapAsync(AgentLabDb db, RetentionOptions settings, Progress progress, CancellationToken ct)
    {
        // Counted once: this replica holds the pass lock, and rows inserted meanwhile only mean a few too many kept.
        var excess = await db.Executions.LongCountAsync(ct).ConfigureAwait(false) - settings.MaxExecutions;
        while (excess > 0)
        {
            var batch = (int)Math.Min(settings.BatchSize, excess);
            var deleted = await DeleteBatchAsync(db, DeleteOldestSql, batch, null, progress, ct).ConfigureAwait(false);
            progress.DeletedByCount += deleted;
            excess -= deleted;
            // Fewer than asked: the rest of the excess is queued or running, which is never deleted.
            if (deleted < batch || excess <= 0)
                return;
            await PauseAsync(settings, ct).ConfigureAwait(false);
        }
    }

    private async Task CompactAsync(AgentLabDb db, RetentionOptions settings, Progress progress, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var cutoff = now - TimeSpan.FromMinutes(settings.CompactEventsAfterMinutes);
        while (true)
        {
            var batch = await EventCompaction.CompactBatchAsync(db, cutoff, now, settings.BatchSize, ct).ConfigureAwait(false);
            progress.ExecutionsCompacted += batch.Executions;
            progress.TokenEventsMerged += batch.EventsRemoved;
            if (batch.Executions < settings.BatchSize)
                return;
            await PauseAsync(settings, ct).ConfigureAwait(false);
        }
    }

    private static async Task<int> DeleteBatchAsync(AgentLabDb db, string sql, int batch, DateTimeOffset? cutoff, Progress progress,
        CancellationToken ct)
    {
        var parameters = new List<NpgsqlParameter> { new("batch", batch) };
        if (cutoff is { } value)
            parameters.Add(new NpgsqlParameter("cutoff", value));
        var deleted = await db.Database.ExecuteSqlRawAsync(sql, parameters, ct).ConfigureAwait(false);
        progress.DeleteStatements++;
        return deleted;
    }

    private Task PauseAsync(RetentionOptions settings, CancellationToken ct) =>
        settings.PauseBetweenBatchesMilliseconds > 0
            ? Task.Delay(TimeSpan.FromMilliseconds(settings.PauseBetweenBatchesMilliseconds), time, ct)
            : Task.CompletedTask;

    /// <summary>What a pass has done so far, so a pass that fails half-way still reports its deletions.</summary>
    private sealed class Progress
    {
        public long DeletedByAge;
        public long DeletedByCount;
        public long ExecutionsCompacted;
        public long TokenEventsMerged;
        public int DeleteStatements;

        public RetentionResult ToResult(RetentionPassStatus status, TimeSpan elapsed, string? error) =>
            new(status, DeletedByAge, DeletedByCount, ExecutionsCompacted, TokenEventsMerged, DeleteStatements, elapsed, error);
    }

    /// <summary>
    /// The session-level advisory lock of one pass, on its own unpooled connection: closing it ends the session, and
    /// PostgreSQL releases the lock with it, also when this process dies or the connection breaks. (A pooled
    /// connection would go back to the pool still holding the lock.)
    /// </summary>
    private sealed class PassLock : IAsyncDisposable
    {
        private readonly NpgsqlConnection _connection;

        private PassLock(NpgsqlConnection connection) => _connection = connection;

        public static async Task<PassLock?> TryTakeAsync(string connectionString, CancellationToken ct)
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
            var connection = new NpgsqlConnection(builder.ConnectionString);
            try
            {
                await connection.OpenAsync(ct).ConfigureAwait(false);
                await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", connection);
                command.Parameters.AddWithValue("key", LockKey);
                if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is true)
                    return new PassLock(connection);
            }
            catch
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            await connection.DisposeAsync().ConfigureAwait(false);
            return null;
        }

        public ValueTask DisposeAsync() => _connection.DisposeAsync();
    }
}

/// <summary>How a retention pass ended.</summary>
public enum RetentionPassStatus
{
    /// <summary>The pass ran to its end.</summary>
    Completed,

    /// <summary>Another replica (or another call here) was running a pass; this one did nothing.</summary>
    SkippedLockHeld,

    /// <summary>PostgreSQL could not be reached; the counts say what was done before it went.</summary>
    DatabaseUnavailable,

    /// <summary>A statement failed for another reason (logged as an error with the exception).</summary>
    Failed,
}

/// <summary>What one retention pass did.</summary>
/// <param name="DeletedByAge">Finished executions deleted for being older than <c>MaxAgeDays</c>.</param>
/// <param name="DeletedByCount">Oldest finished executions deleted to get under <c>MaxExecutions</c>.</param>
/// <param name="ExecutionsCompacted">Finished executions whose events were compacted (with or without token runs).</param>
/// <param name="TokenEventsMerged">Token events removed by merging them into the first of their run.</param>
/// <param name="DeleteStatements">DELETE statements run (one per batch, including the last, short one).</param>
/// <param name="Error">Why the pass stopped early; null when it completed or was skipped.</param>
public sealed record RetentionResult(
    RetentionPassStatus Status,
    long DeletedByAge,
    long DeletedByCount,
    long ExecutionsCompacted,
    long TokenEventsMerged,
    int DeleteStatements,
    TimeSpan Elapsed,
    string? Error)
{
    /// <summary>True when rows were deleted or events compacted.</summary>
    public bool DidSomething => DeletedByAge + DeletedByCount + ExecutionsCompacted > 0;
}
