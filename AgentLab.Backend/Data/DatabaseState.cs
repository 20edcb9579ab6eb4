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

    private readonly TaskCompletionSource firstOutcome = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Waits (at most <paramref name="bound"/>) until the migration step has had its first outcome, so a request that
    /// arrives while the Backend is still starting is served instead of refused; then read <see cref="IsReady"/>.
    /// </summary>
    public Task WaitForFirstOutcomeAsync(TimeSpan bound, CancellationToken ct) =>
        firstOutcome.Task.IsCompleted ? Task.CompletedTask : WaitAsync(bound, ct);

    private async Task WaitAsync(TimeSpan bound, CancellationToken ct)
    {
        try
        {
            await firstOutcome.Task.WaitAsync(bound, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still migrating: the caller reads the state and answers with it.
        }
    }

    internal void Set(string status, string detail, IReadOnlyList<string>? applied = null)
    {
        current = new Snapshot(status, detail, DateTimeOffset.UtcNow, applied ?? current.AppliedMigrations);
        if (status is not (Pending or Migrating))
            firstOutcome.TrySetResult();
    }

    public sealed record Snapshot(string Status, string Detail, DateTimeOffset? At, IReadOnlyList<string> AppliedMigrations);
}
