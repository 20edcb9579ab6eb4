using System.Text;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Backend.Data;

/// <summary>
/// The Backend's one database context. Tables and columns are snake_case; the schema itself is written by hand in
/// <c>Data/Migrations</c> (EF's design-time tooling is not available here), and a test checks that the two agree.
/// </summary>
public sealed class AgentLabDb(DbContextOptions<AgentLabDb> options) : DbContext(options)
{
    /// <summary>EF's record of applied migrations, named like every other table here.</summary>
    public const string MigrationsHistoryTable = "__ef_migrations_history";

    public DbSet<ExecutionRecord> Executions => Set<ExecutionRecord>();
    public DbSet<NodeStateRecord> NodeStates => Set<NodeStateRecord>();
    public DbSet<ExecutionEventRecord> Events => Set<ExecutionEventRecord>();
    public DbSet<ExecutionLogRecord> Logs => Set<ExecutionLogRecord>();
    public DbSet<AgentLab.Backend.Graphs.GraphRecord> Graphs => Set<AgentLab.Backend.Graphs.GraphRecord>();
    public DbSet<AgentLab.Backend.Streams.StreamTicketRecord> StreamTickets => Set<AgentLab.Backend.Streams.StreamTicketRecord>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<ExecutionRecord>(e =>
        {
            e.ToTable("executions");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).ValueGeneratedNever();
            e.Property(x => x.Request).HasColumnType("jsonb");
            e.Property(x => x.Flow).HasColumnType("jsonb");
            // An idempotency key is unique per owner (migration Ownership).
            e.HasIndex(x => new { x.Owner, x.IdempotencyKey }).IsUnique().HasFilter("idempotency_key IS NOT NULL").HasDatabaseName("executions_owner_idempotency_key_key");
        });

        modelBuilder.Entity<NodeStateRecord>(e =>
        {
            e.ToTable("node_states");
            e.HasKey(x => new { x.ExecutionId, x.Position });
            e.Property(x => x.Input).HasColumnType("jsonb");
            e.Property(x => x.Metrics).HasColumnType("jsonb");
            e.Property(x => x.Run).HasColumnType("jsonb");
            e.HasOne<ExecutionRecord>().WithMany().HasForeignKey(x => x.ExecutionId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<ExecutionEventRecord>(e =>
        {
            e.ToTable("execution_events");
            e.HasKey(x => new { x.ExecutionId, x.Seq });
            e.Property(x => x.Data).HasColumnType("jsonb");
            e.HasOne<ExecutionRecord>().WithMany().HasForeignKey(x => x.ExecutionId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<ExecutionLogRecord>(e =>
        {
            e.ToTable("execution_logs");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).UseIdentityAlwaysColumn();
            e.HasIndex(x => new { x.ExecutionId, x.Id }).HasDatabaseName("execution_logs_execution_idx");
            e.HasOne<ExecutionRecord>().WithMany().HasForeignKey(x => x.ExecutionId).OnDelete(DeleteBehavior.Cascade);
        });

        modelBuilder.Entity<AgentLab.Backend.Graphs.GraphRecord>(e =>
        {
            e.ToTable("graphs");
            e.HasKey(x => new { x.Owner, x.Name });
            e.Property(x => x.Definition).HasColumnType("jsonb");
        });

        modelBuilder.Entity<AgentLab.Backend.Streams.StreamTicketRecord>(e =>
        {
            e.ToTable("stream_tickets");
            e.HasKey(x => x.Hash);
            e.HasIndex(x => x.ExpiresAt).HasDatabaseName("stream_tickets_expires_idx");
        });

        // snake_case columns without a naming-convention package (none is available here).
        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
                property.SetColumnName(SnakeCase(property.Name));
        }
    }

    /// <summary><c>TimeToFirstTokenMs</c> → <c>time_to_first_token_ms</c>.</summary>
    public static string SnakeCase(string name)
    {
        var builder = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0)
                builder.Append('_');
            builder.Append(char.ToLowerInvariant(c));
        }
        return builder.ToString();
    }
}
