using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// Executions, their node states, events and logs. Written by hand (PLATFORM.md: no EF design-time tooling here);
/// <c>MigrationSchemaTests</c> checks it against <see cref="AgentLabDb"/>'s model.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261121000000_InitialSchema")]
public sealed class InitialSchema : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            CREATE TABLE executions (
                id                     uuid PRIMARY KEY,
                execution_type         text NOT NULL CHECK (execution_type IN ('simple', 'orchestrator')),
                mode                   text NOT NULL CHECK (mode IN ('sync', 'async')),
                model                  text,
                model_server           text,
                status                 text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'timed_out')),
                request                jsonb NOT NULL,
                request_hash           text NOT NULL,
                idempotency_key        text,
                output                 text,
                error_code             text,
                error_message          text,
                flow                   jsonb,
                created_at             timestamptz NOT NULL,
                started_at             timestamptz,
                completed_at           timestamptz,
                duration_ms            double precision,
                time_to_first_token_ms double precision,
                load_duration_ms       double precision,
                prompt_tokens          integer,
                completion_tokens      integer,
                tokens_per_second      double precision,
                model_calls            integer NOT NULL DEFAULT 0,
                attempt                integer NOT NULL DEFAULT 0,
                lease_owner            text,
                lease_expires_at       timestamptz,
                trace_parent           text,
                -- a finished execution holds no lease; an unfinished one always has a time it lapses
                CONSTRAINT executions_lease_check CHECK (
                    (status IN ('queued', 'running')) = (lease_expires_at IS NOT NULL))
            );

            -- History: newest first, keyset-paged on (created_at, id), with or without one filter.
            CREATE INDEX executions_created_idx ON executions (created_at DESC, id DESC);
            CREATE INDEX executions_status_created_idx ON executions (status, created_at DESC, id DESC);
            CREATE INDEX executions_type_created_idx ON executions (execution_type, created_at DESC, id DESC);
            CREATE INDEX executions_model_created_idx ON executions (model, created_at DESC, id DESC);

            CREATE UNIQUE INDEX executions_idempotency_key_key ON executions (idempotency_key) WHERE idempotency_key IS NOT NULL;

            -- The sweeper's scan: only unfinished rows, by when their lease lapses.
            CREATE INDEX executions_lease_idx ON executions (lease_expires_at) WHERE status IN ('queued', 'running');

            CREATE TABLE node_states (
                execution_id  uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
                position      integer NOT NULL,
                node          text NOT NULL,
                status        text NOT NULL,
                attempt       integer NOT NULL,
                started_at    timestamptz,
                ended_at      timestamptz,
                duration_ms   double precision,
                input         jsonb,
                output        text,
                metrics       jsonb,
                error_code    text,
                error_message text,
                PRIMARY KEY (execution_id, position)
            );

            CREATE TABLE execution_events (
                execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
                seq          bigint NOT NULL CHECK (seq > 0),
                type         text NOT NULL,
                node         text,
                data         jsonb NOT NULL,
                ts           timestamptz NOT NULL,
                PRIMARY KEY (execution_id, seq)
            );

            CREATE TABLE execution_logs (
                id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
                ts           timestamptz NOT NULL,
                level        text NOT NULL,
                node         text,
                message      text NOT NULL
            );
            CREATE INDEX execution_logs_execution_idx ON execution_logs (execution_id, id);
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            DROP TABLE execution_logs;
            DROP TABLE execution_events;
            DROP TABLE node_states;
            DROP TABLE executions;
            """);
    }
}
