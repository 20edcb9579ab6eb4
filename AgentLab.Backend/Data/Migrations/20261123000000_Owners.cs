using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// Who owns what: the token subject that created an execution or registered a graph. Rows from before
/// authentication existed get the empty owner, which only an admin sees.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261123000000_Owners")]
public sealed class Owners : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            ALTER TABLE executions ADD COLUMN owner text NOT NULL DEFAULT '';
            ALTER TABLE graphs ADD COLUMN owner text NOT NULL DEFAULT '';
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            ALTER TABLE graphs DROP COLUMN owner;
            ALTER TABLE executions DROP COLUMN owner;
            """);
    }
}
