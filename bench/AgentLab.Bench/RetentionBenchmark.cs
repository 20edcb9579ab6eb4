using System.Diagnostics;
using AgentLab.Backend.Data;
using AgentLab.Backend.Data.Retention;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace AgentLab.Bench;

/// <summary>
/// Retention at scale: a throw-away PostgreSQL (the AppHost's recipe) or an existing server, migrated with the
/// Backend's migrations and seeded with N executions over 90 days (<see cref="HistorySeeder"/>) and their events, then
/// the EXPLAIN plans of the retention scans and of one DELETE batch, then real passes of <see cref="RetentionJob"/>
/// wired as the Backend wires it (its DbContext pool, execution strategy, health interceptor and options).
/// </summary>
internal static class RetentionBenchmark
{
    // A pass at 1M executions deletes ~10M rows and rewrites the rest of the event log: with the recipe's defaults
    // (128 MB of buffers, a checkpoint every 1 GB of WAL) the figures would measure checkpoints, not the job.
    private static readonly string[] ServerSettings = ["shared_buffers=512MB", "max_wal_size=4GB"];

    private const int MaxAgeDays = 30;
    private const int CompactEventsAfterMinutes = 60;
    private const int Passes = 3;

    public static async Task<int> RunAsync(int rows, int eventsPerExecution, int maxExecutions, string? connection, bool keep)
    {
        if (eventsPerExecution < 3)
        {
            Console.Error.WriteLine("--events-per-execution must be at least 3 (queued, started, the end), to give runs token events to compact.");
            return 2;
        }
        var ct = CancellationToken.None;
        var defaults = new RetentionOptions();
        Console.WriteLine($"{Environment.ProcessorCount} cores; {rows:N0} executions over 90 days, up to {eventsPerExecution} events each; " +
            $"retention: older than {MaxAgeDays} days, beyond {maxExecutions:N0}, compaction {CompactEventsAfterMinutes} min after the end; " +
            $"batches of {defaults.BatchSize} with {defaults.PauseBetweenBatchesMilliseconds} ms pauses (the Backend's defaults).");

        await using var server = await BenchDatabase.StartAsync(connection, keep, ServerSettings, ct);
        var connectionString = server.ConnectionString;
        await using var services = CreateServices(connectionString, maxExecutions);
        await using (var scope = services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
            db.Database.SetCommandTimeout(TimeSpan.FromMinutes(30));
            await db.Database.MigrateAsync(ct);
        }

        Console.WriteLine($"Seeding {rows:N0} executions with binary COPY, then their events...");
        var copy = await HistorySeeder.SeedAsync(connectionString, rows, DateTimeOffset.UtcNow, ct);
        var events = await HistorySeeder.SeedEventsAsync(connectionString, eventsPerExecution, ct);
        var clock = Stopwatch.StartNew();
        await ExecuteAsync(connectionString, "VACUUM ANALYZE executions; VACUUM ANALYZE execution_events; VACUUM ANALYZE execution_stats_daily; VACUUM ANALYZE execution_stats_daily_bins", ct);
        Console.WriteLine($"  COPY (with the rollup trigger) {copy.TotalSeconds:0.0} s, events {events.TotalSeconds:0.0} s, VACUUM ANALYZE {clock.Elapsed.TotalSeconds:0.0} s.");
        var before = await CountAsync(connectionString, DateTimeOffset.UtcNow, ct);
        Console.WriteLine($"  {before}");

        Console.WriteLine();
        await ExplainPlansAsync(connectionString, ct);

        Console.WriteLine();
        var job = services.GetRequiredService<RetentionJob>();
        var failures = 0;
        var previous = before;
        for (var pass = 1; pass <= Passes; pass++)
        {
            var started = DateTimeOffset.UtcNow;
            var result = await job.RunOnceAsync(ct);
            // Every full batch is followed by the pause, so this much of the elapsed time is deliberate idling.
            var pauses = (result.DeletedByAge / defaults.BatchSize + result.DeletedByCount / defaults.BatchSize +
                result.ExecutionsCompacted / defaults.BatchSize) * defaults.PauseBetweenBatchesMilliseconds / 1000.0;
            Console.WriteLine($"pass {pass}: {result.Status}, deleted {result.DeletedByAge:N0} by age and {result.DeletedByCount:N0} by count " +
                $"in {result.DeleteStatements:N0} DELETEs, compacted {result.ExecutionsCompacted:N0} executions ({result.TokenEventsMerged:N0} token events merged) " +
                $"in {result.Elapsed.TotalSeconds:0.0} s (~{pauses:0.0} s of it pauses){(result.Error is null ? "" : ": " + result.Error)}");
            // Expired as of the pass's start: rows keep ageing past the cutoff while it runs.
            var after = await CountAsync(connectionString, started, ct);
            Console.WriteLine($"        {after}");
            var problems = Check(previous, after, result, maxExecutions);
            previous = after;
            if (result.Status != RetentionPassStatus.Completed)
                problems.Add($"the pass ended {result.Status}");
            foreach (var problem in problems)
                Console.WriteLine($"        <-- {problem}");
            failures += problems.Count;
        }
        return failures == 0 ? 0 : 1;
    }

    /// <summary>The job as the Backend registers it (AddAgentLabDatabase, AddRetention), minus the hosted services.</summary>
    private static ServiceProvider CreateServices(string connectionString, int maxExecutions)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"ConnectionStrings:{DatabaseOptions.ConnectionStringName}"] = connectionString,
            [$"{RetentionOptions.Section}:{nameof(RetentionOptions.MaxAgeDays)}"] = $"{MaxAgeDays}",
            [$"{RetentionOptions.Section}:{nameof(RetentionOptions.MaxExecutions)}"] = $"{maxExecutions}",
            [$"{RetentionOptions.Section}:{nameof(RetentionOptions.CompactEventsAfterMinutes)}"] = $"{CompactEventsAfterMinutes}",
        }).Build();
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton(TimeProvider.System)
            .AddLogging(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
                .AddFilter("Microsoft.EntityFrameworkCore", LogLevel.None))   // EF logs probing the history table before it exists as an error
            .AddAgentLabDatabase()
            .AddRetention()
            .BuildServiceProvider();
    }

    /// <summary>
    /// The plans of the statements a pass runs (copies of RetentionJob's and EventCompaction's scans, with the
    /// parameters as literals), at full size. The DELETE runs for real inside a transaction that is rolled back, so its
    /// plan shows what the cascades (node states, events, logs) and the rollup trigger cost per batch.
    /// </summary>
    private static async Task ExplainPlansAsync(string connectionString, CancellationToken ct)
    {
        var finished = $"status IN ({string.Join(", ", ExecutionStatus.Terminal.Select(s => $"'{s}'"))})";
        var batch = new RetentionOptions().BatchSize;
        var ageScan = $"SELECT id FROM executions WHERE created_at < now() - interval '{MaxAgeDays} days' AND {finished} " +
            $"ORDER BY created_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED";
        await ExplainAsync(connectionString, "age scan (one batch)", ageScan, warmUp: false, ct);
        await ExplainAsync(connectionString, "age DELETE (one batch, rolled back; second run in the session)",
            $"DELETE FROM executions WHERE id IN ({ageScan})", warmUp: true, ct);
        await ExplainAsync(connectionString, "count for the cap", "SELECT count(*) FROM executions", warmUp: false, ct);
        await ExplainAsync(connectionString, "cap scan (one batch)",
            $"SELECT id FROM executions WHERE {finished} ORDER BY created_at, id LIMIT {batch} FOR UPDATE SKIP LOCKED", warmUp: false, ct);
        await ExplainAsync(connectionString, "compaction scan (one batch)",
            $"SELECT id FROM executions WHERE {finished} AND completed_at < now() - interval '{CompactEventsAfterMinutes} minutes' " +
            $"AND events_compacted_at IS NULL ORDER BY completed_at LIMIT {batch} FOR UPDATE SKIP LOCKED", warmUp: false, ct);
    }

    private static async Task ExplainAsync(string connectionString, string title, string sql, bool warmUp, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        if (warmUp)
        {
            // The first run in a session plans the trigger functions' statements (PL/pgSQL caches them per session),
            // which a pooled connection of the job has long done.
            await using var first = await connection.BeginTransactionAsync(ct);
            await using var run = new NpgsqlCommand(sql, connection, first) { CommandTimeout = 600 };
            await run.ExecuteNonQueryAsync(ct);
            await first.RollbackAsync(ct);
        }
        // Never committed: disposing the transaction rolls it back, so the DELETE deletes nothing.
        await using var transaction = await connection.BeginTransactionAsync(ct);
        await using var command = new NpgsqlCommand("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, connection, transaction) { CommandTimeout = 600 };
        Console.WriteLine($"-- {title}");
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            Console.WriteLine("   " + reader.GetString(0));
    }

    /// <summary>What the tables hold at one moment, by the facts a pass must respect.</summary>
    private sealed record Counts(long Executions, long Active, long Expired, long Events, long TokenEvents, string Size)
    {
        public override string ToString() =>
            $"{Executions:N0} executions ({Active:N0} queued or running, {Expired:N0} finished past {MaxAgeDays} days), " +
            $"{Events:N0} events ({TokenEvents:N0} token); {Size} with indexes";
    }

    private static async Task<Counts> CountAsync(string connectionString, DateTimeOffset now, CancellationToken ct)
    {
        var finished = $"status IN ({string.Join(", ", ExecutionStatus.Terminal.Select(s => $"'{s}'"))})";
        var sql = $"""
            SELECT (SELECT count(*) FROM executions),
                   (SELECT count(*) FROM executions WHERE NOT {finished}),
                   (SELECT count(*) FROM executions WHERE {finished} AND created_at < @now - interval '{MaxAgeDays} days'),
                   (SELECT count(*) FROM execution_events),
                   (SELECT count(*) FROM execution_events WHERE type = '{EventTypes.Token}'),
                   pg_size_pretty(pg_total_relation_size('executions') + pg_total_relation_size('execution_events'))
            """;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 600 };
        command.Parameters.AddWithValue("now", now);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new Counts(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5));
    }

    /// <summary>
    /// What a completed pass must leave: every unfinished execution, nothing expired, no more than the cap (or only
    /// the unfinished ones, which it never deletes).
    /// </summary>
    private static List<string> Check(Counts before, Counts after, RetentionResult result, int maxExecutions)
    {
        var problems = new List<string>();
        if (after.Active != before.Active)
            problems.Add($"queued or running executions went from {before.Active:N0} to {after.Active:N0}");
        if (after.Expired > 0)
            problems.Add($"{after.Expired:N0} finished executions past {MaxAgeDays} days are left");
        if (after.Executions > Math.Max(maxExecutions, after.Active))
            problems.Add($"{after.Executions:N0} executions are left, more than the cap of {maxExecutions:N0}");
        // Nothing else writes meanwhile, so what the table lost is exactly what the pass reports.
        if (before.Executions - after.Executions != result.DeletedByAge + result.DeletedByCount)
            problems.Add($"the table lost {before.Executions - after.Executions:N0} executions, the pass reports {result.DeletedByAge + result.DeletedByCount:N0}");
        return problems;
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await using var command = new NpgsqlCommand(statement, connection) { CommandTimeout = 0 };
            await command.ExecuteNonQueryAsync(ct);
        }
    }
}
