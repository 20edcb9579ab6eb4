namespace AgentLab.AppHost.Dashboard.Telemetry;

// The telemetry API's shapes (/work/briefs/dashboard-api.md: "Structured logs", "Traces", "Metrics"), serialized with
// DashboardJson.Options: snake_case names, enums as snake_case strings, nulls left out. Attribute values are string,
// long, double, bool or object?[] of those.

public enum LogLevelName { Trace, Debug, Information, Warning, Error, Critical }

public enum SpanKindName { Unspecified, Internal, Server, Client, Producer, Consumer }

public enum SpanStatusName { Unset, Ok, Error }

/// <summary>One structured log record as kept (ids increase in arrival order).</summary>
public sealed record LogRecordView(
    long Id,
    DateTimeOffset Time,
    string Resource,
    LogLevelName Level,
    int SeverityNumber,
    string Category,
    string Message,
    string? TraceId,
    string? SpanId,
    string? ExecutionId,
    IReadOnlyDictionary<string, object?> Attributes);

public sealed record LogsPage(IReadOnlyList<LogRecordView> Records, int Kept, int Capacity, long Dropped);

public sealed record TraceSummary(
    string TraceId,
    string Name,
    string Resource,
    IReadOnlyList<string> Resources,
    DateTimeOffset Start,
    double DurationMs,
    int SpanCount,
    int ErrorCount,
    SpanStatusName Status,
    IReadOnlyList<string> ExecutionIds,
    IReadOnlyList<string> ExecutionTypes,
    int ModelCalls);

public sealed record TracesPage(IReadOnlyList<TraceSummary> Traces, int Kept, int Capacity, long Dropped);

public sealed record SpanEventView(string Name, DateTimeOffset Time, IReadOnlyDictionary<string, object?> Attributes);

public sealed record SpanView(
    string SpanId,
    string? ParentSpanId,
    string Name,
    string Resource,
    string Scope,
    SpanKindName Kind,
    DateTimeOffset Start,
    double OffsetMs,
    double DurationMs,
    int Depth,
    SpanStatusName Status,
    string? StatusMessage,
    bool IsGenAi,
    IReadOnlyDictionary<string, object?> Attributes,
    IReadOnlyList<SpanEventView> Events);

public sealed record TraceDetail(
    string TraceId,
    DateTimeOffset Start,
    double DurationMs,
    IReadOnlyList<string> Resources,
    IReadOnlyList<SpanView> Spans);

public sealed record ChartPoint(DateTimeOffset Time, double Value);

public sealed record ChartSeries(string Resource, string Name, IReadOnlyList<ChartPoint> Points);

public sealed record MetricChart(string Id, string Title, string Unit, IReadOnlyList<ChartSeries> Series);

/// <summary>A metric received from a resource: <c>type</c> is gauge, sum or histogram; <c>points</c> counts kept points over its series.</summary>
public sealed record InstrumentView(string Resource, string Name, string Unit, string Type, int Points, int Series);

/// <summary><c>dropped_points</c>/<c>dropped_series</c> are additions to the contract: what the bounds let go.</summary>
public sealed record MetricsView(IReadOnlyList<MetricChart> Charts, IReadOnlyList<InstrumentView> Instruments, long DroppedPoints, long DroppedSeries);

/// <summary>Filters of <c>GET /api/logs</c>; null means "any".</summary>
public sealed record LogQuery(
    string? Resource = null,
    LogLevelName? MinLevel = null,
    string? ExecutionId = null,
    string? TraceId = null,
    string? Text = null,
    int Limit = 200);

/// <summary>Filters of <c>GET /api/traces</c>; null means "any".</summary>
public sealed record TraceQuery(string? Resource = null, string? ExecutionId = null, int Limit = 100);
