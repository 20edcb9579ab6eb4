using System.Diagnostics;
using AgentLab.Backend.Data;
using AgentLab.Backend.History;
using AgentLab.Backend.Metrics;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;

namespace AgentLab.Bench;

/// <summary>
/// History and metrics at scale: a throw-away PostgreSQL (the AppHost's recipe) or an existing server, migrated with
/// the Backend's migrations and seeded with N executions, then the history and metrics queries timed warm through the
/// Backend's own query classes (the statements the API sends), their plans, the metrics estimates against exact
/// percentile_cont, the cost of the rollup trigger on a finish, and the same reads over HTTP from a Backend process.
/// </summary>
internal static class HistoryBenchmark
{
    // Tiered JIT recompiles EF Core's query pipeline after ~30 calls of a shape; fewer warm-up runs left a one-off
    // 10-20 ms run in the timings (gone with DOTNET_TieredCompilation=0), which is the JIT, not the query.
    private const int WarmUpRuns = 30;

    public static async Task<int> RunAsync(int rows, string? connection, int runs, bool http, bool keep)
    {
        var ct = CancellationToken.None;
        Console.WriteLine($"{Environment.ProcessorCount} cores; {rows:N0} executions; {runs} timed runs per query after {WarmUpRuns} warm-up runs.");

        await using var server = await BenchDatabase.StartAsync(connection, keep, [], ct);
        var connectionString = server.ConnectionString;
        var options = new DbContextOptionsBuilder<AgentLabDb>()
            .UseNpgsql(connectionString, o => o.MigrationsHistoryTable(AgentLabDb.MigrationsHistoryTable))
            .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning))
            .Options;
        await using (var db = new AgentLabDb(options))
            await db.Database.MigrateAsync(ct);

        var now = DateTimeOffset.UtcNow;
        Console.WriteLine($"Seeding {rows:N0} executions with binary COPY...");
        var copy = await HistorySeeder.SeedAsync(connectionString, rows, now, ct);
        var clock = Stopwatch.StartNew();
        await ExecuteAsync(connectionString, "VACUUM ANALYZE executions; VACUUM ANALYZE execution_stats_daily; VACUUM ANALYZE execution_stats_daily_bins", ct);
        Console.WriteLine($"  COPY (with the rollup trigger) {copy.TotalSeconds:0.0} s, VACUUM ANALYZE {clock.Elapsed.TotalSeconds:0.0} s; " +
            $"{await ScalarAsync<string>(connectionString, "SELECT pg_size_pretty(pg_total_relation_size('executions'))", ct)} with indexes; " +
            $"rollup {await ScalarAsync<long>(connectionString, "SELECT count(*) FROM execution_stats_daily", ct):N0} day rows + " +
            $"{await ScalarAsync<long>(connectionString, "SELECT count(*) FROM execution_stats_daily_bins", ct):N0} bin rows.");

        // A position ~90 % of the way down the history, as a client paging far back would hold.
        var deepOffset = (int)(rows * 0.9);
        var deep = await DeepCursorAsync(connectionString, deepOffset, ct);
        var factory = new PooledDbContextFactory<AgentLabDb>(options);
        var window = (From: now.AddDays(-30), To: now.AddDays(-29));

        var history = new (string Name, HistoryFilter Filter)[]
        {
            ("history: first page", new()),
            ($"history: deep page (row {deepOffset:N0})", new() { After = deep }),
            ("history: status=completed", new() { Statuses = ["completed"] }),
            ("history: status=failed", new() { Statuses = ["failed"] }),
            ("history: status=failed,timed_out", new() { Statuses = ["failed", "timed_out"] }),
            ("history: status=queued,cancelled deep", new() { Statuses = ["queued", "cancelled"], After = deep }),
            ("history: execution_type=orchestrator", new() { ExecutionType = "orchestrator" }),
            ("history: model=gemma2:9b", new() { Model = "gemma2:9b" }),
            ("history: model=gemma2:9b deep", new() { Model = "gemma2:9b", After = deep }),
            ("history: from/to one day, 30 days ago", new() { From = window.From, To = window.To }),
            ("history: status+type+model+from/to", new() { Statuses = ["failed"], ExecutionType = "orchestrator", Model = "phi3:mini", From = window.From, To = window.To }),
            ("history: limit=100", new() { Limit = 100 }),
        };
        var metrics = new (string Name, DateTimeOffset? From, DateTimeOffset? To)[]
        {
            ("metrics: all time", null, null),
            ("metrics: last 24 h", now.AddHours(-24), null),
            ("metrics: last 7 days", now.AddDays(-7), null),
        };

        Console.WriteLine();
        Console.WriteLine($"{"query (Backend query classes, in-process)",-44} {"rows",5} {"p50 ms",8} {"max ms",8}  plan (EXPLAIN ANALYZE of the same statement)");
        var failures = 0;
        foreach (var (name, filter) in history)
        {
            var result = await MeasureAsync(runs, async () =>
            {
                await using var db = await factory.CreateDbContextAsync(ct);
                return (await new HistoryQuery(db).ReadAsync(filter, ct)).Items.Count;
            });
            var (plan, problems) = await PlanAsync(options, connectionString, filter, ct);
            failures += problems.Count;
            Console.WriteLine($"{name,-44} {result.Rows,5} {result.P50,8:0.00} {result.Max,8:0.00}  {plan}{(problems.Count > 0 ? "  <-- " + string.Join("; ", problems) : "")}");
        }
        MetricsReport? allTime = null;
        foreach (var (name, from, to) in metrics)
        {
            var result = await MeasureAsync(runs, async () =>
            {
                await using var db = await factory.CreateDbContextAsync(ct);
                var report = await new MetricsQuery(db).ReadAsync(from, to, DateTimeOffset.UtcNow, ct);
                allTime ??= report;
                return 1 + report.ByType.Count + report.ByModel.Count + report.ByStatus.Count;
            });
            Console.WriteLine($"{name,-44} {result.Rows,5} {result.P50,8:0.00} {result.Max,8:0.00}  rollup for whole UTC days + raw rows for the rest");
        }

        await CompareWithExactAsync(connectionString, allTime!, ct);
        await MeasureTriggerCostAsync(connectionString, ct);
        if (http)
            await MeasureHttpAsync(connectionString, runs, deep, ct);
        return failures == 0 ? 0 : 1;
    }

    /// <summary>Exact metrics the naive way (percentile_cont with GROUPING SETS over the raw rows): its time, and how far the estimates are from it.</summary>
    private static async Task CompareWithExactAsync(string connectionString, MetricsReport estimated, CancellationToken ct)
    {
        const string exact = """
            SET jit = off;
            SELECT GROUPING(execution_type, model, status), execution_type, model, status,
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms),
                   percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY time_to_first_token_ms)
            FROM executions GROUP BY GROUPING SETS ((), (execution_type), (model), (status))
            """;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var clock = Stopwatch.StartNew();
        await using var command = new NpgsqlCommand(exact, connection) { CommandTimeout = 600 };
        await using var reader = await command.ExecuteReaderAsync(ct);
        var worst = (Error: 0.0, Where: "");
        var compared = 0;
        while (await reader.ReadAsync(ct))
        {
            var grouping = reader.GetInt32(0);
            GroupMetrics? group = grouping switch
            {
                0b111 => estimated.Totals,
                0b011 => estimated.ByType.FirstOrDefault(t => t.ExecutionType == reader.GetString(1)),
                0b101 => estimated.ByModel.FirstOrDefault(m => m.Model == (reader.IsDBNull(2) ? null : reader.GetString(2))),
                _ => estimated.ByStatus.FirstOrDefault(s => s.Status == reader.GetString(3)),
            };
            if (group is null)
                continue;
            foreach (var (column, percentiles, label) in new[] { (4, group.DurationMs, "duration"), (5, group.TimeToFirstTokenMs, "ttft") })
            {
                if (reader.IsDBNull(column))
                    continue;
                var values = reader.GetFieldValue<double?[]>(column);
                double?[] estimates = [percentiles.P50, percentiles.P95, percentiles.P99];
                for (var i = 0; i < 3; i++)
                {
                    if (values[i] is not { } truth || estimates[i] is not { } estimate)
                        continue;
                    compared++;
                    var error = Math.Abs(estimate / truth - 1);
                    if (error > worst.Error)
                        worst = (error, $"{label} p{(i == 0 ? 50 : i == 1 ? 95 : 99)} of group {grouping}: exact {truth:0.0}, estimate {estimate:0.0}");
                }
            }
        }
        Console.WriteLine();
        Console.WriteLine($"Exact metrics the naive way (percentile_cont + GROUPING SETS over every row, JIT off): {clock.Elapsed.TotalMilliseconds:0} ms.");
        Console.WriteLine($"Rollup estimates vs exact over {compared} percentiles: worst {worst.Error:P2} ({worst.Where}).");
    }

    /// <summary>What the rollup trigger adds to the writes of a running execution: a lease renewal, and the finish.</summary>
    private static async Task MeasureTriggerCostAsync(string connectionString, CancellationToken ct)
    {
        const int count = 300;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var ids = new List<Guid>();
        await using (var select = new NpgsqlCommand($"SELECT id FROM executions WHERE status = 'running' LIMIT {2 * count}", connection))
        await using (var reader = await select.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                ids.Add(reader.GetGuid(0));
        }
        if (ids.Count < 2 * count)
            return;

        const string renew = "UPDATE executions SET lease_expires_at = now() + interval '1 minute' WHERE id = @id AND status = 'running'";
        const string finish = """
            UPDATE executions SET status = 'completed', completed_at = now(), duration_ms = 1234, time_to_first_token_ms = 120,
                   prompt_tokens = 100, completion_tokens = 200, tokens_per_second = 45, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = @id AND status = 'running'
            """;

        async Task<double> EachAsync(string sql, IEnumerable<Guid> batch)
        {
            var times = new List<double>();
            foreach (var id in batch)
            {
                await using var update = new NpgsqlCommand(sql, connection);
                update.Parameters.AddWithValue("id", id);
                var start = Stopwatch.GetTimestamp();
                await update.ExecuteNonQueryAsync(ct);
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            times.Sort();
            return times[times.Count / 2];
        }

        // Warm the session's cached trigger plans first, as a pooled connection of a running Backend has them.
        await EachAsync(renew, ids.Take(20));
        var renewWith = await EachAsync(renew, ids.Take(count));
        var finishWith = await EachAsync(finish, ids.Take(count));
        await using (var disable = new NpgsqlCommand("ALTER TABLE executions DISABLE TRIGGER executions_stats_update", connection))
            await disable.ExecuteNonQueryAsync(ct);
        var renewWithout = await EachAsync(renew, ids.Skip(count));
        var finishWithout = await EachAsync(finish, ids.Skip(count));
        await using (var restore = new NpgsqlCommand("ALTER TABLE executions ENABLE TRIGGER executions_stats_update; SELECT execution_stats_rebuild()", connection))
            await restore.ExecuteNonQueryAsync(ct);
        Console.WriteLine($"Rollup trigger on the write path, p50 of {count} one-row UPDATEs (autocommit): finish (running → completed) " +
            $"{finishWith:0.000} ms with it, {finishWithout:0.000} ms without; lease renewal {renewWith:0.000} ms with, {renewWithout:0.000} ms without.");
    }

    private static async Task MeasureHttpAsync(string connectionString, int runs, HistoryCursor deep, CancellationToken ct)
    {
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__agentlabdb"] = connectionString,
            ["Logging__LogLevel__Default"] = "Warning",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        }.With(BenchAuth.BackendEnvironment);
        await using var backend = await ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", environment, [], ct);
        using var client = new HttpClient { BaseAddress = backend.BaseAddress, Timeout = TimeSpan.FromSeconds(30) }.WithToken();
        var since = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-24).ToString("O"));
        var requests = new (string Name, string Path)[]
        {
            ("GET /api/v1/history", "/api/v1/history"),
            ("GET /api/v1/history?cursor=<deep>", $"/api/v1/history?cursor={deep.Encode()}"),
            ("GET /api/v1/history?status=failed,timed_out", "/api/v1/history?status=failed,timed_out"),
            ("GET /api/v1/metrics", "/api/v1/metrics"),
            ("GET /api/v1/metrics?from=<24 h ago>", $"/api/v1/metrics?from={since}"),
        };
        Console.WriteLine();
        Console.WriteLine($"{"over HTTP (Backend process, Release)",-44} {"bytes",7} {"p50 ms",8} {"max ms",8}");
        foreach (var (name, path) in requests)
        {
            var result = await MeasureAsync(runs, async () =>
            {
                using var response = await client.GetAsync(path, ct);
                var body = await response.Content.ReadAsByteArrayAsync(ct);
                if (!response.IsSuccessStatusCode)
                    throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(body)}");
                return body.Length;
            });
            Console.WriteLine($"{name,-44} {result.Rows,7} {result.P50,8:0.00} {result.Max,8:0.00}");
        }
    }

    private static async Task<(string Plan, IReadOnlyList<string> Problems)> PlanAsync(DbContextOptions<AgentLabDb> options, string connectionString,
        HistoryFilter filter, CancellationToken ct)
    {
        var capture = new CommandCapture();
        await using (var db = new AgentLabDb(new DbContextOptionsBuilder<AgentLabDb>(options).AddInterceptors(capture).Options))
            await new HistoryQuery(db).ReadAsync(filter, ct);
        var (sql, parameters) = capture.Commands.Single();
        var plan = await QueryPlans.ExplainAsync(connectionString, sql, parameters, indexPathsOnly: false, analyze: true, ct);
        return ($"{QueryPlans.Describe(plan)}, {plan.GetProperty("Actual Total Time").GetDouble():0.00} ms in the server",
            QueryPlans.HistoryPlanProblems(plan));
    }

    private static async Task<(double P50, double Max, int Rows)> MeasureAsync(int runs, Func<Task<int>> action)
    {
        for (var i = 0; i < WarmUpRuns; i++)
            await action();
        var times = new double[runs];
        var rows = 0;
        for (var i = 0; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            rows = await action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return (times[(runs - 1) / 2], times[^1], rows);
    }

    private static async Task<HistoryCursor> DeepCursorAsync(string connectionString, int offset, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(
            $"SELECT created_at, id FROM executions ORDER BY created_at DESC, id DESC OFFSET {offset} LIMIT 1", connection) { CommandTimeout = 120 };
        await using var reader = await command.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? new HistoryCursor(reader.GetFieldValue<DateTimeOffset>(0), reader.GetGuid(1))
            : new HistoryCursor(DateTimeOffset.UtcNow, Guid.Empty);
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await using var command = new NpgsqlCommand(statement, connection) { CommandTimeout = 600 };
            await command.ExecuteNonQueryAsync(ct);
        }
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }
}
