namespace AgentLab.Backend.Health;

/// <summary><c>{"status": "healthy"}</c> or <c>{"status": "ready"}</c>.</summary>
public sealed class StatusReport
{
    public required string Status { get; init; }
}

/// <summary><c>GET /api/v1/health/detailed</c>: every component the Backend depends on, with its latency.</summary>
public sealed class DetailedHealthReport
{
    /// <summary>The worst component status: <c>healthy|degraded|unhealthy</c>.</summary>
    public required string Status { get; init; }

    /// <summary><c>simulator|ollama|unknown</c>.</summary>
    public required string ModelServer { get; init; }
    public required Dictionary<string, ComponentHealth> Components { get; init; }
}

public sealed class ComponentHealth
{
    /// <summary><c>healthy|degraded|unhealthy|unknown</c>.</summary>
    public required string Status { get; init; }
    public double? LatencyMs { get; init; }
    public string? Detail { get; init; }
}
