using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// Custom graphs registered by name (<c>POST /api/v1/graphs</c>). The definition is stored as sent, after
/// LabService validated it; <c>version</c> counts replacements.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261122000000_Graphs")]
public sealed class GraphsTable : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            CREATE TABLE graphs (
                name        text PRIMARY KEY,
                definition  jsonb NOT NULL,
                created_at  timestamptz NOT NULL,
                updated_at  timestamptz NOT NULL,
                version     integer NOT NULL DEFAULT 1 CHECK (version >= 1)
            );
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("DROP TABLE graphs;");
    }
}
