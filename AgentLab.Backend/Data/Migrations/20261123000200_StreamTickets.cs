using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace AgentLab.Backend.Data.Migrations;

/// <summary>
/// Single-use stream tickets, shared by every replica. Only a SHA-256 of each ticket is stored. UNLOGGED: a ticket
/// lives 30 s, so losing the table in a crash (or on a failover to a standby) costs clients one reconnect with a new
/// ticket, and no write here has to wait for the WAL. The index on expires_at keeps the cleanup on insert cheap.
/// </summary>
[DbContext(typeof(AgentLabDb))]
[Migration("20261123000200_StreamTickets")]
public sealed class StreamTickets : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("""
            CREATE UNLOGGED TABLE stream_tickets (
                hash bytea PRIMARY KEY,
                subject text NOT NULL,
                is_admin boolean NOT NULL,
                execution_id uuid NOT NULL,
                expires_at timestamptz NOT NULL
            );
            CREATE INDEX stream_tickets_expires_idx ON stream_tickets (expires_at);
            """);
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.Sql("DROP TABLE stream_tickets;");
    }
}
