using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AgentLab.Backend.Data;

/// <summary>
/// The database in the Backend's own <c>/health</c> (what the AppHost polls): unhealthy until the migration step is
/// done or while an outage is confirmed. It reads <see cref="DatabaseHealth"/>'s state and never opens a connection,
/// so a frequent poll costs the database nothing.
/// </summary>
public sealed class DatabaseHealthCheck(DatabaseHealth health, DatabaseState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (health.CurrentOutage is { } outage)
            return Task.FromResult(HealthCheckResult.Unhealthy($"PostgreSQL is unreachable since {outage.Since:O}: {outage.Reason}"));
        var migration = state.Current;
        return Task.FromResult(migration.Status == DatabaseState.Ready
            ? HealthCheckResult.Healthy(migration.Detail)
            : HealthCheckResult.Unhealthy($"The migration step is {migration.Status}: {migration.Detail}"));
    }
}
