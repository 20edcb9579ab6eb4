namespace AgentLab.Backend.Data;

/// <summary>
/// Where the Backend's database stands: the migration step's progress and the last thing it saw. The migrator writes
/// it; readiness, <c>/api/v1/health/detailed</c> and the execute endpoint read it.
/// </summary>
public sealed class DatabaseState
{
    public const string Pending = "pending";
    public const string Migrating = "migrating";
    public const string Ready = "ready";
    public const string Unavailable = "unavailable";
    public const string Failed = "failed";

    private volatile Snapshot current = new(Pending, "The migration step has not run yet.", null, []);

    /// <summary>The migration status (<see cref="Pending"/>, <see cref="Migrating"/>, <see cref="Ready"/>, ...) and why.</summary>
    public Snapshot Current => current;

    /// <summary>True once the schema is up to date: executions may be recorded.</summary>
    public bool IsReady => current.Status == Ready;

    internal void Set(string status, string detail, IReadOnlyList<string>? applied = null) =>
        current = new Snapshot(status, detail, DateTimeOffset.UtcNow, applied ?? current.AppliedMigrations);

    public sealed record Snapshot(string Status, string Detail, DateTimeOffset? At, IReadOnlyList<string> AppliedMigrations);
}
