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

    /// <summary><c>labservice</c>, <c>model_server</c>, <c>database</c>.</summary>
    public required Dictionary<string, ComponentHealth> Components { get; init; }

    /// <summary>The migration step that brings the database schema up to date when the Backend starts.</summary>
    public required MigrationHealth Migrations { get; init; }
}

/// <summary>Where the migration step stands; executions are refused (503 <c>db_unavailable</c>) until it is <c>ready</c>.</summary>
public sealed class MigrationHealth
{
    /// <summary><c>pending|migrating|ready|unavailable|failed</c>.</summary>
    public required string Status { get; init; }
    public required string Detail { get; init; }

    /// <summary>The migrations the database has, oldest first (known once the step has reached the database).</summary>
    public required IReadOnlyList<string> AppliedMigrations { get; init; }

    /// <summary>When the status last changed.</summary>
    public DateTimeOffset? ChangedAt { get; init; }
}

public sealed class ComponentHealth
{
    /// <summary><c>healthy|degraded|unhealthy|unknown</c>.</summary>
    public required string Status { get; init; }
    public double? LatencyMs { get; init; }
    public string? Detail { get; init; }
}
