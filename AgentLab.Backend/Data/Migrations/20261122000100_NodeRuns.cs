using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// <c>node_states.run</c>: an orchestrator node's run as LabService reported it (route, values, metrics), so a run
/// interrupted by a LabService crash can be continued with <c>previous_nodes</c> without running that node again.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261122000100_NodeRuns")]
public sealed class NodeRuns : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("ALTER TABLE node_states ADD COLUMN run jsonb;");
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("ALTER TABLE node_states DROP COLUMN run;");
    }
}
