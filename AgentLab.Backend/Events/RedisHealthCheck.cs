using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AgentLab.Backend.Events;

/// <summary>
/// Redis in <c>/health</c>: degraded, never unhealthy, while it is away, because executions still run and streams
/// fall back to PostgreSQL; only live delivery across replicas is slower.
/// </summary>
public sealed class RedisHealthCheck(RedisConnection redis) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            !redis.IsConfigured ? HealthCheckResult.Healthy("Redis is not configured: streams read PostgreSQL.")
            : redis.IsConnected ? HealthCheckResult.Healthy($"Connected to {redis.Endpoint}.")
            : HealthCheckResult.Degraded($"Redis at {redis.Endpoint} is unreachable: executions run and are stored; streams read PostgreSQL until it is back."));
}
