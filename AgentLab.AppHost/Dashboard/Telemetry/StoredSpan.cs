using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using AgentLab.ServiceDefaults;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>A span as kept: ids in lowercase hex, bounded attributes and events, times in Unix nanoseconds.</summary>
internal sealed class StoredSpan
{
    public required string TraceId { get; init; }
    public required string SpanId { get; init; }
    public string? ParentSpanId { get; init; }
    public required string Name { get; init; }
    public required string Resource { get; init; }
    public required string Scope { get; init; }
    public SpanKindName Kind { get; init; }
    public ulong StartNanos { get; init; }
    public ulong EndNanos { get; init; }
    public SpanStatusName Status { get; init; }
    public string? StatusMessage { get; init; }
    public string? ExecutionId { get; init; }
    public string? ExecutionType { get; init; }
    public bool IsGenAi { get; init; }
    public required IReadOnlyDictionary<string, object?> Attributes { get; init; }
    public required IReadOnlyList<SpanEventView> Events { get; init; }

    /// <summary>Null for a span without a valid trace or span id: it could never be found or placed in a tree.</summary>
    public static StoredSpan? From(Span span, string resource, string scope)
    {
        if (OtlpValues.Id(span.TraceId) is not { } traceId || OtlpValues.Id(span.SpanId) is not { } spanId)
            return null;
        var attributes = OtlpValues.Attributes(span.Attributes);
        var start = span.StartTimeUnixNano;
        return new StoredSpan
        {
            TraceId = traceId,
            SpanId = spanId,
            ParentSpanId = OtlpValues.Id(span.ParentSpanId),
            Name = OtlpValues.Cut(span.Name, OtlpValues.MaxNameChars),
            Resource = resource,
            Scope = scope,
            Kind = span.Kind switch
            {
                Span.Types.SpanKind.Internal => SpanKindName.Internal,
                Span.Types.SpanKind.Server => SpanKindName.Server,
                Span.Types.SpanKind.Client => SpanKindName.Client,
                Span.Types.SpanKind.Producer => SpanKindName.Producer,
                Span.Types.SpanKind.Consumer => SpanKindName.Consumer,
                _ => SpanKindName.Unspecified,
            },
            StartNanos = start,
            EndNanos = Math.Max(start, span.EndTimeUnixNano),
            Status = span.Status?.Code switch
            {
                Otlp.Status.Types.StatusCode.Ok => SpanStatusName.Ok,
                Otlp.Status.Types.StatusCode.Error => SpanStatusName.Error,
                _ => SpanStatusName.Unset,
            },
            StatusMessage = span.Status is { Message.Length: > 0 } status ? OtlpValues.Cut(status.Message) : null,
            ExecutionId = attributes.GetValueOrDefault(AgentLabExecution.ExecutionIdKey) as string,
            ExecutionType = attributes.GetValueOrDefault(AgentLabExecution.ExecutionTypeKey) as string,
            IsGenAi = attributes.Keys.Any(k => k.StartsWith("gen_ai.", StringComparison.Ordinal)),
            Attributes = attributes,
            Events = span.Events.Take(OtlpValues.MaxAttributes)
                .Select(e => new SpanEventView(OtlpValues.Cut(e.Name, OtlpValues.MaxNameChars), OtlpValues.Time(e.TimeUnixNano),
                    OtlpValues.Attributes(e.Attributes)))
                .ToList(),
        };
    }

    public SpanView ToView(ulong traceStartNanos, int depth) => new(
        SpanId, ParentSpanId, Name, Resource, Scope, Kind, OtlpValues.Time(StartNanos),
        OtlpValues.Milliseconds(traceStartNanos, StartNanos), OtlpValues.Milliseconds(StartNanos, EndNanos), depth,
        Status, StatusMessage, IsGenAi, Attributes, Events);
}
