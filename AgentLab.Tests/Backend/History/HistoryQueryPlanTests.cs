using AgentLab.Backend.History;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.Backend.History;

/// <summary>
/// Every history filter path has an index that returns rows already in (created_at DESC, id DESC) order, so a page
/// is a short index range scan: EXPLAIN of the exact statement HistoryQuery sends, with sequential scans, bitmap scans
/// and sorts priced out, still reads only index scans and sorts nothing but LIMITed branches.
/// </summary>
public sealed class HistoryQueryPlanTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Filters => new()
    {
        "",
        "status=failed",
        "status=failed,timed_out,cancelled",
        "status=queued,running",
        "execution_type=orchestrator",
        "model=mistral:7b",
        "from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z",
        "status=completed&from=2026-11-01T00:00:00Z",
        "model=mistral:7b&execution_type=simple&status=completed,failed",
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public Task HistoryQuery_EachFilterFirstAndDeepPage_IndexScansOnly(string filters) => AssertIndexScansOnlyAsync(Parse(filters));

    /// <summary>
    /// A user's own history (what every non-admin reads): the owner-leading copies of the indexes serve it, never a
    /// walk through every owner's rows of the time index filtering for this one's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Filters))]
    public Task HistoryQuery_OneOwnerEachFilterFirstAndDeepPage_IndexScansOnly(string filters) =>
        AssertIndexScansOnlyAsync(Parse(filters) with { Owner = "user-4" }, ownerIndexes: true);

    private static async Task AssertIndexScansOnlyAsync(HistoryFilter filter, bool ownerIndexes = false)
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await database.ExecuteAsync(Seed, Ct);
        var capture = new CommandCapture();
        await using var db = CreateContext(database, capture);
        var query = new HistoryQuery(db);
        var first = await query.ReadAsync(filter, Ct);
        var deep = filter with { After = new HistoryCursor(new DateTimeOffset(2026, 11, 5, 0, 0, 0, TimeSpan.Zero), Guid.Empty) };
        await query.ReadAsync(deep, Ct);

        var problems = new List<string>();
        foreach (var (sql, parameters) in capture.Commands)
        {
            var plan = await QueryPlans.ExplainAsync(database.ConnectionString, sql, parameters, indexPathsOnly: true, analyze: false, Ct);
            problems.AddRange(QueryPlans.HistoryPlanProblems(plan).Select(p => $"{p} in {QueryPlans.Describe(plan)}"));
            // Not an index without the owner, filtering every subject's rows for this one's.
            if (ownerIndexes && QueryPlans.Nodes(plan).Any(n => n.Node.TryGetProperty("Index Name", out var index) && !index.GetString()!.StartsWith("executions_owner_", StringComparison.Ordinal)))
                problems.Add($"an index without the owner in {QueryPlans.Describe(plan)}");
        }

        Assert.Equal(2, capture.Commands.Count);
        Assert.Contains("(e.created_at, e.id) < (", capture.Commands[1].Sql, StringComparison.Ordinal);
        Assert.NotEmpty(first.Items);
        Assert.All(first.Items, item => Assert.Equal(filter.Owner ?? item.Owner, item.Owner));
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    private static HistoryFilter Parse(string query)
    {
        var values = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query);
        string? One(string key) => values.TryGetValue(key, out var v) ? v.ToString() : null;
        var (filter, problem) = HistoryFilter.Read(values.TryGetValue("status", out var s) ? s.ToArray() : null, One("execution_type"),
            One("model"), One("from"), One("to"), One("limit"), One("cursor"), new HistoryOptions());
        Assert.Null(problem);
        return filter!;
    }

    private static AgentLab.Backend.Data.AgentLabDb CreateContext(TestDatabase database, CommandCapture capture) =>
        new(new DbContextOptionsBuilder<AgentLab.Backend.Data.AgentLabDb>()
            .UseNpgsql(database.ConnectionString)
            .AddInterceptors(capture)
            .Options);

    // 20,000 executions over November 2026 with the benchmark's mix, enough for PostgreSQL's statistics to matter,
    // spread over 101 owners: each holds ~1 % of the rows, as one user among many does, with every status and filter value.
    private const string Seed = """
        INSERT INTO executions (id, owner, execution_type, mode, model, status, request, request_hash, created_at, duration_ms, lease_expires_at)
        SELECT gen_random_uuid(), 'user-' || (i % 101), CASE WHEN i % 3 = 0 THEN 'orchestrator' ELSE 'simple' END, 'sync',
               (ARRAY['mistral:7b', 'llama3.1:8b', 'qwen2.5:7b'])[1 + (i / 7) % 3], s.status, '{}', 'x',
               timestamptz '2026-11-01' + i * interval '2 minutes', 1000,
               CASE WHEN s.status IN ('queued', 'running') THEN now() END
        FROM generate_series(1, 20000) i
        CROSS JOIN LATERAL (SELECT CASE WHEN i % 100 < 85 THEN 'completed' WHEN i % 100 < 93 THEN 'failed' WHEN i % 100 < 96 THEN 'timed_out'
                                        WHEN i % 100 < 98 THEN 'cancelled' WHEN i % 100 < 99 THEN 'running' ELSE 'queued' END AS status) s;
        ANALYZE executions;
        """;
}
