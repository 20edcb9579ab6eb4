using System.Data.Common;
using System.Text.Json;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;

namespace AgentLab.Tests.Support;

/// <summary>
/// Records the SQL and parameters EF Core sends, so a test (or the benchmark) can EXPLAIN exactly the statement the
/// API runs rather than a hand-made copy of it.
/// </summary>
public sealed class CommandCapture : DbCommandInterceptor
{
    private readonly List<(string Sql, NpgsqlParameter[] Parameters)> commands = [];

    public IReadOnlyList<(string Sql, NpgsqlParameter[] Parameters)> Commands
    {
        get { lock (commands) return [.. commands]; }
    }

    public void Clear()
    {
        lock (commands) commands.Clear();
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        var parameters = command.Parameters.Cast<NpgsqlParameter>().Select(p => p.Clone()).ToArray();
        lock (commands) commands.Add((command.CommandText, parameters));
        return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
    }
}

/// <summary>EXPLAIN of a captured statement, and the facts about its plan the tests and the benchmark check.</summary>
public static class QueryPlans
{
    /// <summary>
    /// The plan PostgreSQL picks (JSON), optionally with sequential scans, bitmap scans and sorts priced out of reach:
    /// a plan that still scans or sorts the table then has no index path at all.
    /// </summary>
    public static async Task<JsonElement> ExplainAsync(string connectionString, string sql, NpgsqlParameter[] parameters,
        bool indexPathsOnly, bool analyze, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        if (indexPathsOnly)
        {
            await using var set = new NpgsqlCommand("SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off", connection);
            await set.ExecuteNonQueryAsync(ct);
        }
        await using var command = new NpgsqlCommand($"EXPLAIN (FORMAT JSON{(analyze ? ", ANALYZE" : "")}) {sql}", connection);
        command.Parameters.AddRange(parameters.Select(p => p.Clone()).ToArray());
        var json = (string)(await command.ExecuteScalarAsync(ct))!;
        return JsonDocument.Parse(json).RootElement[0].GetProperty("Plan").Clone();
    }

    /// <summary>Every node of a plan, depth first, with the node types of its ancestors.</summary>
    public static IEnumerable<(JsonElement Node, IReadOnlyList<string> Ancestors)> Nodes(JsonElement plan, IReadOnlyList<string>? ancestors = null)
    {
        ancestors ??= [];
        yield return (plan, ancestors);
        if (!plan.TryGetProperty("Plans", out var children))
            yield break;
        var path = ancestors.Append(plan.GetProperty("Node Type").GetString()!).ToArray();
        foreach (var child in children.EnumerateArray())
        {
            foreach (var node in Nodes(child, path))
                yield return node;
        }
    }

    /// <summary>
    /// What is wrong with a history plan: any read of <c>executions</c> that is not an index scan, or a sort that is
    /// not above a LIMIT (sorting a few limited branches to merge them is fine; sorting the table is not). An
    /// Incremental Sort is fine: it only orders ties of an index's leading column, as rows stream past.
    /// </summary>
    public static IReadOnlyList<string> HistoryPlanProblems(JsonElement plan)
    {
        var problems = new List<string>();
        foreach (var (node, ancestors) in Nodes(plan))
        {
            var type = node.GetProperty("Node Type").GetString()!;
            var relation = node.TryGetProperty("Relation Name", out var r) ? r.GetString() : null;
            if (relation == "executions" && type is not ("Index Scan" or "Index Only Scan"))
                problems.Add($"{type} on executions");
            if (relation == "executions")
            {
                // Walking up from the scan: a Limit must come before any Sort.
                for (var i = ancestors.Count - 1; i >= 0; i--)
                {
                    if (ancestors[i] == "Limit")
                        break;
                    if (ancestors[i] == "Sort")
                    {
                        problems.Add($"{ancestors[i]} over an unlimited {type}");
                        break;
                    }
                }
            }
        }
        return problems;
    }

    /// <summary>The scans of a plan as "Index Scan using executions_status_created_idx", for reports.</summary>
    public static string Describe(JsonElement plan) => string.Join(" + ", Nodes(plan)
        .Select(n => n.Node)
        .Where(n => n.TryGetProperty("Relation Name", out _))
        .Select(n => n.GetProperty("Node Type").GetString() + (n.TryGetProperty("Index Name", out var i) ? " " + i.GetString() : ""))
        .Distinct());
}
