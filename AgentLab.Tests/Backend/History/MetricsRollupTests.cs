using AgentLab.Backend.Data;
using AgentLab.Backend.Metrics;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;
using static AgentLab.Tests.Backend.History.ExecutionRows;

namespace AgentLab.Tests.Backend.History;

/// <summary>
/// The daily rollup behind the metrics (migration HistoryMetricsIndexes): kept exact by its triggers through every
/// kind of write, and its percentile estimates close to percentile_cont's.
/// </summary>
public sealed class MetricsRollupTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Rollup_AfterSubmitsStartsFinishesCorrectionsAndDeletes_EqualsARebuildFromScratch()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var queued = Enumerable.Range(0, 6).Select(i => Row(ExecutionStatus.Queued, Day.AddHours(i))).ToList();
        var finished = Enumerable.Range(0, 8).Select(i => Row(i % 3 == 0 ? ExecutionStatus.Failed : ExecutionStatus.Completed,
            Day.AddDays(i % 2).AddMinutes(i), model: i % 4 == 0 ? null : "mistral:7b", durationMs: 100 + i * 37.5)).ToList();
        await InsertAsync(database, queued.Concat(finished), Ct);
        await using var db = database.CreateContext();

        // queued → running (a lease renewal is the same kind of write), then → completed, as ExecutionStore does it.
        var ids = queued.Select(q => q.Id).ToList();
        await db.Executions.Where(e => ids.Contains(e.Id)).ExecuteUpdateAsync(s => s
            .SetProperty(e => e.Status, ExecutionStatus.Running).SetProperty(e => e.Attempt, 1), Ct);
        await db.Executions.Where(e => e.Id == ids[0] || e.Id == ids[1] || e.Id == ids[2]).ExecuteUpdateAsync(s => s
            .SetProperty(e => e.Status, ExecutionStatus.Completed).SetProperty(e => e.DurationMs, 4321)
            .SetProperty(e => e.CompletionTokens, 9).SetProperty(e => e.TokensPerSecond, 3)
            .SetProperty(e => e.LeaseOwner, (string?)null).SetProperty(e => e.LeaseExpiresAt, (DateTimeOffset?)null), Ct);
        // A finished row corrected, and one that changes nothing the rollup keeps.
        await db.Executions.Where(e => e.Id == finished[1].Id).ExecuteUpdateAsync(s => s.SetProperty(e => e.PromptTokens, 999), Ct);
        await db.Executions.Where(e => e.Id == finished[2].Id).ExecuteUpdateAsync(s => s.SetProperty(e => e.Output, "edited"), Ct);
        // Retention-like deletes, one of which empties a whole day/model/status key.
        var gone = new[] { finished[0].Id, finished[4].Id, finished[5].Id };
        await db.Executions.Where(e => gone.Contains(e.Id)).ExecuteDeleteAsync(Ct);

        var maintained = await SnapshotAsync(database);
        await database.ExecuteAsync("SELECT execution_stats_rebuild()", Ct);
        var rebuilt = await SnapshotAsync(database);

        Assert.NotEmpty(maintained);
        Assert.Equal(rebuilt, maintained);
        Assert.DoesNotContain(maintained, row => row.EndsWith("|0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Migration_DownAndUpAgainOverExistingRows_BackfillsTheRollup()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await InsertAsync(database, Enumerable.Range(0, 10).Select(i =>
            Row(i % 2 == 0 ? ExecutionStatus.Completed : ExecutionStatus.Running, Day.AddHours(i * 7))), Ct);
        var before = await SnapshotAsync(database);
        await using var db = database.CreateContext();
        var migrator = db.GetService<Microsoft.EntityFrameworkCore.Migrations.IMigrator>();

        await migrator.MigrateAsync("20261121000000_InitialSchema", Ct);
        await migrator.MigrateAsync(null, Ct);

        // The five finished rows, counted in the rollup before and again after it was dropped and rebuilt.
        Assert.Equal(5, before.Where(r => r.StartsWith("facts|", StringComparison.Ordinal))
            .Sum(r => long.Parse(r[(r.LastIndexOf('|') + 1)..], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(before, await SnapshotAsync(database));
    }

    [Fact]
    public async Task Rollup_TableTruncated_RollupEmpty()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await InsertAsync(database, [Row(ExecutionStatus.Completed, Day)], Ct);

        await database.ExecuteAsync("TRUNCATE executions CASCADE", Ct);

        Assert.Empty(await SnapshotAsync(database));
    }

    [Fact]
    public async Task Percentiles_TwoThousandSkewedDurations_WithinOnePercentOfPercentileCont()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var random = new Random(7);
        var rows = Enumerable.Range(0, 2000).Select(i => Row(ExecutionStatus.Completed, Day.AddMinutes(i),
            model: i % 2 == 0 ? "a" : "b",
            durationMs: Math.Round(800 * Math.Exp(0.8 * Normal(random)), 1),
            ttftMs: Math.Round(90 * Math.Exp(0.5 * Normal(random)), 1))).ToList();
        await InsertAsync(database, rows, Ct);
        await using var db = database.CreateContext();

        var report = await new MetricsQuery(db).ReadAsync(null, null, DateTimeOffset.UtcNow, Ct);

        var exact = await ExactPercentilesAsync(database, "duration_ms");
        var estimated = new[] { report.Totals.DurationMs.P50!.Value, report.Totals.DurationMs.P95!.Value, report.Totals.DurationMs.P99!.Value };
        for (var i = 0; i < 3; i++)
            Assert.True(Math.Abs(estimated[i] / exact[i] - 1) < 0.01, $"percentile {i}: exact {exact[i]}, estimated {estimated[i]}");
        var exactTtft = await ExactPercentilesAsync(database, "time_to_first_token_ms");
        Assert.True(Math.Abs(report.Totals.TimeToFirstTokenMs.P95!.Value / exactTtft[1] - 1) < 0.01);
        Assert.Equal(1000, report.ByModel.Single(m => m.Model == "a").Count);
    }

    [Fact]
    public async Task Percentiles_ClusterInsideOneBin_LandOnTheCluster()
    {
        // Runs that all hit a 120 s timeout: 120,000-120,099 ms, one histogram bin that spans 110,218-120,194 ms.
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await InsertAsync(database, Enumerable.Range(0, 100).Select(i =>
            Row(ExecutionStatus.TimedOut, Day.AddMinutes(i), durationMs: 120_000 + i)), Ct);
        await using var db = database.CreateContext();

        var report = await new MetricsQuery(db).ReadAsync(null, null, DateTimeOffset.UtcNow, Ct);

        var exact = await ExactPercentilesAsync(database, "duration_ms");
        // Placed around the cluster's mean (120,049.5 ms), not around the bin's middle (~115,100 ms).
        Assert.True(Math.Abs(report.Totals.DurationMs.P50!.Value / exact[0] - 1) < 0.001, $"p50 {report.Totals.DurationMs.P50} vs {exact[0]}");
        Assert.True(Math.Abs(report.Totals.DurationMs.P99!.Value / exact[2] - 1) < 0.001, $"p99 {report.Totals.DurationMs.P99} vs {exact[2]}");
    }

    [Theory]
    [InlineData(null, null, true, null, null)]
    [InlineData("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", true, "2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z")]
    [InlineData("2026-11-20T10:00:00Z", "2026-11-22T10:00:00Z", true, "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z")]
    [InlineData("2026-11-20T10:00:00+05:00", null, true, "2026-11-21T00:00:00Z", null)]
    [InlineData(null, "2026-11-22T10:00:00Z", true, null, "2026-11-22T00:00:00Z")]
    [InlineData("2026-11-21T01:00:00Z", "2026-11-21T23:00:00Z", false, null, null)]
    [InlineData("2026-11-20T12:00:00Z", "2026-11-21T12:00:00Z", false, null, null)]
    [InlineData("2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z", false, null, null)]
    public void RollupDays_Window_WholeUtcDaysInside(string? from, string? to, bool use, string? first, string? end)
    {
        var days = MetricsQuery.RollupDays(Parse(from), Parse(to));

        Assert.Equal((use, Parse(first), Parse(end)), days);
    }

    private static DateTimeOffset? Parse(string? value) =>
        value is null ? null : DateTimeOffset.Parse(value, System.Globalization.CultureInfo.InvariantCulture);

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static async Task<double[]> ExactPercentilesAsync(TestDatabase database, string column)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(
            $"SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY {column}) FROM executions", connection);
        return (double[])(await command.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>Both rollup tables as sorted text rows.</summary>
    private static async Task<List<string>> SnapshotAsync(TestDatabase database)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("""
            SELECT concat_ws('|', 'facts', day, execution_type, model, status, prompt_tokens, completion_tokens, generation_tokens,
                             round(generation_seconds::numeric, 9), executions) AS row FROM execution_stats_daily
            UNION ALL
            SELECT concat_ws('|', 'bins', day, execution_type, model, status, metric, bin, executions) FROM execution_stats_daily_bins
            ORDER BY row
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(Ct);
        var rows = new List<string>();
        while (await reader.ReadAsync(Ct))
            rows.Add(reader.GetString(0));
        return rows;
    }
}
