using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace AgentLab.Backend.Data;

/// <summary>
/// Node-by-node persistence of orchestrator runs: each completed node is written as it completes, by the lease
/// holder only, so a run cut short (LabService died, or this replica) can continue after its completed nodes.
/// </summary>
public sealed class NodeRunStore(AgentLabDb db)
{
    /// <summary>
    /// Inserts or replaces the node state at its position, only while <paramref name="owner"/> holds the running
    /// execution. One statement, so it is safe to retry. False when the run is no longer this owner's (cancelled,
    /// finished, taken over): the caller must stop.
    /// </summary>
    public async Task<bool> TryUpsertAsync(Guid id, string owner, NodeStateRecord node, CancellationToken ct)
    {
        const string sql = """
            INSERT INTO node_states (execution_id, position, node, status, attempt, started_at, ended_at, duration_ms, output, metrics, run, error_code, error_message)
            SELECT @id, @position, @node, @status, @attempt, @started_at, @ended_at, @duration_ms, @output, @metrics, @run, @error_code, @error_message
            WHERE EXISTS (SELECT 1 FROM executions WHERE id = @id AND lease_owner = @owner AND status = 'running')
            ON CONFLICT (execution_id, position) DO UPDATE SET
                node = EXCLUDED.node, status = EXCLUDED.status, attempt = EXCLUDED.attempt, started_at = EXCLUDED.started_at,
                ended_at = EXCLUDED.ended_at, duration_ms = EXCLUDED.duration_ms, output = EXCLUDED.output,
                metrics = EXCLUDED.metrics, run = EXCLUDED.run, error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message
            """;
        // Typed parameters: INSERT ... SELECT cannot infer the type of an untyped null.
        object[] parameters =
        [
            Param("id", NpgsqlDbType.Uuid, id),
            Param("owner", NpgsqlDbType.Text, owner),
            Param("position", NpgsqlDbType.Integer, node.Position),
            Param("node", NpgsqlDbType.Text, node.Node),
            Param("status", NpgsqlDbType.Text, node.Status),
            Param("attempt", NpgsqlDbType.Integer, node.Attempt),
            Param("started_at", NpgsqlDbType.TimestampTz, node.StartedAt?.ToUniversalTime()),
            Param("ended_at", NpgsqlDbType.TimestampTz, node.EndedAt?.ToUniversalTime()),
            Param("duration_ms", NpgsqlDbType.Double, node.DurationMs),
            Param("output", NpgsqlDbType.Text, node.Output),
            Param("metrics", NpgsqlDbType.Jsonb, node.Metrics),
            Param("run", NpgsqlDbType.Jsonb, node.Run),
            Param("error_code", NpgsqlDbType.Text, node.ErrorCode),
            Param("error_message", NpgsqlDbType.Text, node.ErrorMessage),
        ];
        var strategy = db.Database.CreateExecutionStrategy();
        var written = await strategy.ExecuteAsync(token => db.Database.ExecuteSqlRawAsync(sql, parameters, token), ct).ConfigureAwait(false);
        return written == 1;
    }

    /// <summary>The completed node runs of an execution, in flow order, as LabService sent them (to send back as <c>previous_nodes</c>).</summary>
    public async Task<IReadOnlyList<string>> CompletedRunsAsync(Guid id, CancellationToken ct) =>
        await db.NodeStates.AsNoTracking()
            .Where(n => n.ExecutionId == id && n.Status == ExecutionStatus.Completed && n.Run != null)
            .OrderBy(n => n.Position)
            .Select(n => n.Run!)
            .ToListAsync(ct).ConfigureAwait(false);

    private static NpgsqlParameter Param(string name, NpgsqlDbType type, object? value) =>
        new(name, type) { Value = value ?? DBNull.Value };
}
