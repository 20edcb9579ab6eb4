using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// What the retention job needs: a mark on each execution whose events were compacted, and a small partial index
/// over the finished executions still waiting for it (the compaction scan), which empties itself as they are marked.
/// The age and count scans need no new index: they walk <c>executions_created_idx</c> from its oldest end.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261121000200_Retention")]
public sealed class Retention : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            ALTER TABLE executions ADD COLUMN events_compacted_at timestamptz;

            CREATE INDEX executions_compaction_idx ON executions (completed_at)
                WHERE events_compacted_at IS NULL AND status IN ('completed', 'failed', 'cancelled', 'timed_out');
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            DROP INDEX executions_compaction_idx;
            ALTER TABLE executions DROP COLUMN events_compacted_at;
            """);
    }
}
