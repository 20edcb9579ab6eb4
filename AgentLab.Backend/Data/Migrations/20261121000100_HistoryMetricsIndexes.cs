using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// A daily rollup of finished executions for <c>GET /api/v1/metrics</c>, kept current by statement-level triggers
/// on <c>executions</c>. Measured at 1,000,000 rows on 2 cores, exact <c>percentile_cont</c> over the raw rows by
/// type, model and status took 5-8 s; with the rollup, all-time metrics take ~0.2 s (see MetricsQuery).
/// History needs no new index: InitialSchema's four <c>(…, created_at DESC, id DESC)</c> indexes serve every filter;
/// metrics get one small partial index over the unfinished executions.
/// </summary>
/// <remarks>
/// <para><c>execution_stats_daily</c>: per UTC day of <c>created_at</c>, type, model and terminal status — counts and
/// token sums. <c>execution_stats_daily_bins</c>: the same keys plus a log-spaced histogram of <c>duration_ms</c>
/// (metric 1) and <c>time_to_first_token_ms</c> (metric 2): bin <c>b</c> counts the values in [2^(b/8), 2^((b+1)/8))
/// ms and sums them, so a value alone in its bin is known exactly and a cluster (timeouts at 120 s) is placed around
/// its mean.</para>
/// <para>Only terminal rows are rolled up: they never change again, so a finished execution is added once and
/// removed once (by retention). Unknown models are stored as <c>''</c> (a real model name is never empty), which keeps
/// the keys plain primary keys.</para>
/// <para>Each trigger function holds its own copy of the upsert (made from <see cref="Upsert"/>) as static SQL,
/// whose plan PL/pgSQL caches: one shared function building the statement for EXECUTE was re-planned on every
/// write and cost 1.3 ms per finished execution instead of 0.6 ms.</para>
/// </remarks>
[DbContext(typeof(AgentLabDb))]
[Migration("20261121000100_HistoryMetricsIndexes")]
public sealed class HistoryMetricsIndexes : Migration
{
    private const string Terminal = "('completed', 'failed', 'cancelled', 'timed_out')";

    // The columns the rollup is computed from: an update that changes none of them moves nothing.
    private const string Tracked = "status, execution_type, model, created_at, duration_ms, time_to_first_token_ms, " +
        "prompt_tokens, completion_tokens, tokens_per_second";

    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql($$"""
            CREATE TABLE execution_stats_daily (
                day                timestamptz NOT NULL,
                execution_type     text NOT NULL,
                model              text NOT NULL,
                status             text NOT NULL,
                executions         bigint NOT NULL,
                prompt_tokens      bigint NOT NULL,
                completion_tokens  bigint NOT NULL,
                -- tokens/s = generation_tokens / generation_seconds over completed rows that report a rate
                generation_tokens  bigint NOT NULL,
                generation_seconds double precision NOT NULL,
                PRIMARY KEY (day, execution_type, model, status)
            );

            CREATE TABLE execution_stats_daily_bins (
                day            timestamptz NOT NULL,
                execution_type text NOT NULL,
                model          text NOT NULL,
                status         text NOT NULL,
                metric         smallint NOT NULL CHECK (metric IN (1, 2)),
                bin            smallint NOT NULL,
                executions     bigint NOT NULL,
                value_sum      double precision NOT NULL,
                PRIMARY KEY (day, execution_type, model, status, metric, bin)
            );

            -- Metrics count unfinished executions from the table (the rollup holds finished ones only): by creation
            -- time, index-only. executions_lease_idx has them too, but by lease expiry and without their keys, which
            -- cost a heap visit per row (125 ms for 20,000 unfinished rows). In history order, so a history page of
            -- queued or running executions can use it as well.
            CREATE INDEX executions_active_created_idx ON executions (created_at DESC, id DESC) INCLUDE (execution_type, model, status)
                WHERE status IN ('queued', 'running');

            -- Rows that reach zero (their executions were deleted) are removed at once; these keep finding them cheap.
            CREATE INDEX execution_stats_daily_empty_idx ON execution_stats_daily (day) WHERE executions = 0;
            CREATE INDEX execution_stats_daily_bins_empty_idx ON execution_stats_daily_bins (day) WHERE executions = 0;

            -- The histogram bin of a value in ms: 8 bins per doubling. Clamped so NaN, infinities and values <= 0
            -- still land in a bin instead of failing the write that finished an execution.
            CREATE FUNCTION execution_stats_bin(value double precision) RETURNS smallint
                LANGUAGE sql IMMUTABLE PARALLEL SAFE
                AS $$ SELECT floor(8 * ln(least(greatest(value, 0.001), 1e12)) / ln(2))::smallint $$;

            {{Functions(byOwner: false)}}

            CREATE FUNCTION execution_stats_on_truncate() RETURNS trigger
                LANGUAGE plpgsql
                AS $$
                BEGIN
                    TRUNCATE execution_stats_daily, execution_stats_daily_bins;
                    RETURN NULL;
                END
                $$;

            CREATE TRIGGER executions_stats_insert AFTER INSERT ON executions
                REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION execution_stats_on_insert();
            CREATE TRIGGER executions_stats_update AFTER UPDATE ON executions
                REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION execution_stats_on_update();
            CREATE TRIGGER executions_stats_delete AFTER DELETE ON executions
                REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION execution_stats_on_delete();
            CREATE TRIGGER executions_stats_truncate AFTER TRUNCATE ON executions
                FOR EACH STATEMENT EXECUTE FUNCTION execution_stats_on_truncate();

            SELECT execution_stats_rebuild();
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            DROP TRIGGER executions_stats_truncate ON executions;
            DROP TRIGGER executions_stats_delete ON executions;
            DROP TRIGGER executions_stats_update ON executions;
            DROP TRIGGER executions_stats_insert ON executions;
            DROP FUNCTION execution_stats_rebuild();
            DROP FUNCTION execution_stats_on_truncate();
            DROP FUNCTION execution_stats_on_delete();
            DROP FUNCTION execution_stats_on_update();
            DROP FUNCTION execution_stats_on_insert();
            DROP FUNCTION execution_stats_bin(double precision);
            DROP TABLE execution_stats_daily_bins;
            DROP TABLE execution_stats_daily;
            DROP INDEX executions_active_created_idx;
            """);
    }

    /// <summary>
    /// The trigger functions that keep the rollup current, and <c>execution_stats_rebuild()</c> (CREATE OR REPLACE, so
    /// migration Ownership can swap them for the versions keyed by owner too, and back on its Down).
    /// </summary>
    internal static string Functions(bool byOwner)
    {
        var tracked = byOwner ? "owner, " + Tracked : Tracked;
        string Prefixed(string alias) => string.Join(", ", tracked.Split(", ").Select(c => $"{alias}.{c}"));
        var changedByUpdate =
            $"SELECT n.*, 1 AS sign FROM new_rows n JOIN old_rows o USING (id) WHERE ({Prefixed("o")}) IS DISTINCT FROM ({Prefixed("n")}) " +
            $"UNION ALL SELECT o.*, -1 FROM old_rows o JOIN new_rows n USING (id) WHERE ({Prefixed("o")}) IS DISTINCT FROM ({Prefixed("n")})";

        return $$"""
            -- Statement-level triggers with transition tables: a COPY of a million rows or a retention batch is one
            -- set-based upsert, not one per row. Most writes touch no finished row (a submit, a start, a lease
            -- renewal) and leave before the upsert.
            CREATE OR REPLACE FUNCTION execution_stats_on_insert() RETURNS trigger
                LANGUAGE plpgsql
                AS $$
                BEGIN
                    IF EXISTS (SELECT FROM new_rows WHERE status IN {{Terminal}}) THEN
                        {{Upsert("SELECT n.*, 1 AS sign FROM new_rows n", byOwner)}}
                    END IF;
                    RETURN NULL;
                END
                $$;

            CREATE OR REPLACE FUNCTION execution_stats_on_update() RETURNS trigger
                LANGUAGE plpgsql
                AS $$
                BEGIN
                    IF EXISTS (SELECT FROM new_rows WHERE status IN {{Terminal}})
                       OR EXISTS (SELECT FROM old_rows WHERE status IN {{Terminal}}) THEN
                        {{Upsert(changedByUpdate, byOwner)}}
                        {{RemoveEmpty}}
                    END IF;
                    RETURN NULL;
                END
                $$;

            CREATE OR REPLACE FUNCTION execution_stats_on_delete() RETURNS trigger
                LANGUAGE plpgsql
                AS $$
                BEGIN
                    IF EXISTS (SELECT FROM old_rows WHERE status IN {{Terminal}}) THEN
                        {{Upsert("SELECT o.*, -1 AS sign FROM old_rows o", byOwner)}}
                        {{RemoveEmpty}}
                    END IF;
                    RETURN NULL;
                END
                $$;

            -- Recomputes the rollup from the executions table; writers wait meanwhile, readers do not.
            -- Used below for the rows that exist already, and by hand should the rollup ever be in doubt.
            CREATE OR REPLACE FUNCTION execution_stats_rebuild() RETURNS void
                LANGUAGE plpgsql
                AS $$
                BEGIN
                    LOCK TABLE executions IN SHARE MODE;
                    TRUNCATE execution_stats_daily, execution_stats_daily_bins;
                    {{Upsert("SELECT e.*, 1 AS sign FROM executions e", byOwner)}}
                END
                $$;
            """;
    }

    /// <summary>
    /// The one definition of how rows enter (+1) and leave (-1) the rollup; <paramref name="source"/> yields
    /// <c>executions</c> rows plus a <c>sign</c> column. Upserts run in key order, so concurrent writers lock rollup
    /// rows in the same order and cannot deadlock on them.
    /// </summary>
    private static string Upsert(string source, bool byOwner)
    {
        // With the owner dimension (migration Ownership) the owner leads every rollup key.
        var owner = byOwner ? "owner, " : "";
        return $$"""
        WITH changed AS (
            SELECT {{(byOwner ? "c.owner, " : "")}}date_trunc('day', c.created_at, 'UTC') AS day, c.execution_type, coalesce(c.model, '') AS model,
                   c.status, c.sign, c.duration_ms, c.time_to_first_token_ms, c.prompt_tokens, c.completion_tokens,
                   c.status = 'completed' AND c.tokens_per_second > 0 AND c.completion_tokens > 0 AS generated,
                   c.tokens_per_second
            FROM ({{source}}) c
            WHERE c.status IN {{Terminal}}
        ),
        facts AS (
            INSERT INTO execution_stats_daily AS s
                ({{owner}}day, execution_type, model, status, executions, prompt_tokens, completion_tokens, generation_tokens, generation_seconds)
            SELECT {{owner}}day, execution_type, model, status, sum(sign),
                   coalesce(sum(sign * prompt_tokens), 0), coalesce(sum(sign * completion_tokens), 0),
                   coalesce(sum(sign * completion_tokens) FILTER (WHERE generated), 0),
                   coalesce(sum(sign * completion_tokens / tokens_per_second) FILTER (WHERE generated), 0)
            FROM changed
            GROUP BY {{owner}}day, execution_type, model, status
            ORDER BY {{owner}}day, execution_type, model, status
            ON CONFLICT ({{owner}}day, execution_type, model, status) DO UPDATE SET
                executions = s.executions + excluded.executions,
                prompt_tokens = s.prompt_tokens + excluded.prompt_tokens,
                completion_tokens = s.completion_tokens + excluded.completion_tokens,
                generation_tokens = s.generation_tokens + excluded.generation_tokens,
                generation_seconds = s.generation_seconds + excluded.generation_seconds
        )
        INSERT INTO execution_stats_daily_bins AS b ({{owner}}day, execution_type, model, status, metric, bin, executions, value_sum)
        SELECT {{owner}}day, execution_type, model, status, m.metric, execution_stats_bin(m.value), sum(sign), sum(sign * m.value)
        FROM changed CROSS JOIN LATERAL (VALUES (1::smallint, duration_ms), (2::smallint, time_to_first_token_ms)) m (metric, value)
        WHERE m.value IS NOT NULL
        GROUP BY {{(byOwner ? "1, 2, 3, 4, 5, 6, 7" : "1, 2, 3, 4, 5, 6")}}
        ORDER BY {{(byOwner ? "1, 2, 3, 4, 5, 6, 7" : "1, 2, 3, 4, 5, 6")}}
        ON CONFLICT ({{owner}}day, execution_type, model, status, metric, bin) DO UPDATE SET
            executions = b.executions + excluded.executions,
            value_sum = b.value_sum + excluded.value_sum;
        """;
    }

    // Keys whose executions have all gone (retention) must not pile up as zero rows.
    private const string RemoveEmpty = """
        DELETE FROM execution_stats_daily WHERE executions = 0;
        DELETE FROM execution_stats_daily_bins WHERE executions = 0;
        """;
}
