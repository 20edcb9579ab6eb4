using System.Text.Json.Serialization;

namespace AgentLab.Backend.Metrics;

/// <summary><c>GET /api/v1/metrics</c>: totals and the same figures by execution type, model and status.</summary>
public sealed class MetricsReport
{
    public required MetricsWindow Window { get; init; }
    public required DateTimeOffset GeneratedAt { get; init; }
    public required GroupMetrics Totals { get; init; }

    /// <summary>Every execution type, in a fixed order, zeros included.</summary>
    public required List<TypeMetrics> ByType { get; init; }

    /// <summary>Models with at least one execution in the window, most used first; <c>model: null</c> collects
    /// executions that failed before a model was resolved.</summary>
    public required List<ModelMetrics> ByModel { get; init; }

    /// <summary>Every status, in state-machine order, zeros included.</summary>
    public required List<StatusMetrics> ByStatus { get; init; }
}

/// <summary>The executions counted: <c>created_at</c> in [from, to); a missing bound is open.</summary>
public sealed class MetricsWindow
{
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
}

/// <summary>The figures of one group of executions (filled in by MetricsQuery; zeros and nulls for an empty group).</summary>
public class GroupMetrics
{
    public long Count { get; set; }
    public long Completed { get; set; }

    /// <summary><c>failed</c> plus <c>timed_out</c>.</summary>
    public long Failed { get; set; }
    public long Cancelled { get; set; }

    /// <summary><c>failed / (completed + failed + cancelled)</c>, i.e. over finished executions; null when none finished.</summary>
    public double? ErrorRate { get; set; }

    /// <summary>Over every execution in the group that recorded a duration (so by_status tells outcomes apart).</summary>
    public Percentiles DurationMs { get; set; } = new();
    public Percentiles TimeToFirstTokenMs { get; set; } = new();
    public long PromptTokens { get; set; }
    public long CompletionTokens { get; set; }

    /// <summary>Completion tokens divided by generation time, summed over completed executions (see MetricsQuery).</summary>
    public double? TokensPerSecond { get; set; }
}

/// <summary>Percentiles in milliseconds, estimated from a log-spaced histogram (see MetricsQuery); null without values.</summary>
public sealed class Percentiles
{
    public double? P50 { get; init; }
    public double? P95 { get; init; }
    public double? P99 { get; init; }
}

public sealed class TypeMetrics : GroupMetrics
{
    [JsonPropertyOrder(-1)] public required string ExecutionType { get; init; }
}

public sealed class ModelMetrics : GroupMetrics
{
    [JsonPropertyOrder(-1)] public required string? Model { get; init; }
}

public sealed class StatusMetrics : GroupMetrics
{
    [JsonPropertyOrder(-1)] public required string Status { get; init; }
}
