using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// Everything is read per owner (the token subject; an admin reads across owners): the keys and indexes that make
/// those reads cheap and keep one subject's names out of another's way.
/// </summary>
/// <remarks>
/// <para>Idempotency keys are unique per owner: user B reusing A's key creates B's own execution.</para>
/// <para>History: one owner-leading index per filter path, mirroring InitialSchema's four, so a user's page stays a
/// short range scan in <c>(created_at DESC, id DESC)</c> order. The four without owner stay for admins (and retention).</para>
/// <para>Metrics: the daily rollup gets the owner as the leading key column, so a user's figures read only that user's
/// rollup rows; an admin's sum over all of them. The triggers and the rebuild are replaced by the owner-aware
/// versions (<see cref="HistoryMetricsIndexes.Functions"/>) and the rollup is rebuilt from the table.</para>
/// <para>Graphs: keyed by (owner, name), so two subjects may each register a graph of the same name.</para>
/// </remarks>
[DbContext(typeof(AgentLabDb))]
[Migration("20261123000100_Ownership")]
public sealed class Ownership : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql($"""
            CREATE UNIQUE INDEX executions_owner_idempotency_key_key ON executions (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
            DROP INDEX executions_idempotency_key_key;

            CREATE INDEX executions_owner_created_idx ON executions (owner, created_at DESC, id DESC);
            CREATE INDEX executions_owner_status_created_idx ON executions (owner, status, created_at DESC, id DESC);
            CREATE INDEX executions_owner_type_created_idx ON executions (owner, execution_type, created_at DESC, id DESC);
            CREATE INDEX executions_owner_model_created_idx ON executions (owner, model, created_at DESC, id DESC);

            ALTER TABLE graphs DROP CONSTRAINT graphs_pkey, ADD PRIMARY KEY (owner, name);

            -- The rollup is recomputed below: emptied first, so the new key column needs no backfill of its own.
            TRUNCATE execution_stats_daily, execution_stats_daily_bins;
            ALTER TABLE execution_stats_daily ADD COLUMN owner text NOT NULL DEFAULT '',
                DROP CONSTRAINT execution_stats_daily_pkey, ADD PRIMARY KEY (owner, day, execution_type, model, status);
            ALTER TABLE execution_stats_daily_bins ADD COLUMN owner text NOT NULL DEFAULT '',
                DROP CONSTRAINT execution_stats_daily_bins_pkey, ADD PRIMARY KEY (owner, day, execution_type, model, status, metric, bin);

            {HistoryMetricsIndexes.Functions(byOwner: true)}

            SELECT execution_stats_rebuild();
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        // Going back merges owners again: per-owner duplicates of an idempotency key or a graph name must go first,
        // or the old unique keys cannot be built. The newest row of each name or key stays.
        migrationBuilder.Sql($"""
            TRUNCATE execution_stats_daily, execution_stats_daily_bins;
            ALTER TABLE execution_stats_daily DROP CONSTRAINT execution_stats_daily_pkey, DROP COLUMN owner,
                ADD PRIMARY KEY (day, execution_type, model, status);
            ALTER TABLE execution_stats_daily_bins DROP CONSTRAINT execution_stats_daily_bins_pkey, DROP COLUMN owner,
                ADD PRIMARY KEY (day, execution_type, model, status, metric, bin);
            {HistoryMetricsIndexes.Functions(byOwner: false)}
            SELECT execution_stats_rebuild();

            DELETE FROM graphs g USING graphs newer
                WHERE newer.name = g.name AND (newer.updated_at, newer.owner) > (g.updated_at, g.owner);
            ALTER TABLE graphs DROP CONSTRAINT graphs_pkey, ADD PRIMARY KEY (name);

            UPDATE executions e SET idempotency_key = NULL
                WHERE idempotency_key IS NOT NULL AND EXISTS (SELECT FROM executions newer
                    WHERE newer.idempotency_key = e.idempotency_key AND (newer.created_at, newer.id) > (e.created_at, e.id));
            CREATE UNIQUE INDEX executions_idempotency_key_key ON executions (idempotency_key) WHERE idempotency_key IS NOT NULL;
            DROP INDEX executions_owner_idempotency_key_key;

            DROP INDEX executions_owner_model_created_idx;
            DROP INDEX executions_owner_type_created_idx;
            DROP INDEX executions_owner_status_created_idx;
            DROP INDEX executions_owner_created_idx;
            """);
    }
}
