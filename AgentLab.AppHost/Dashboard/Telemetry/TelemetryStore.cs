using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using AgentLab.ServiceDefaults;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>
/// The bounded in-memory window of what the services exported: spans, log records and metric points, each capped by
/// <see cref="DashboardOptions"/> and dropping the oldest first (the counters say how many went). Thread-safe: the
/// receiver adds while the dashboard reads; one lock per signal, held only for list work, never for I/O.
/// </summary>
public sealed class TelemetryStore
{
    /// <summary>Metric series (resource + metric + attribute set) kept; a high-cardinality attribute cannot grow past it.</summary>
    public const int DefaultMaxSeries = 2_000;

    public const string RequestDurationMetric = "http.server.request.duration";
    public const string TokensMetric = "agentlab.model.tokens";
    public const string TokenTypeAttribute = "gen_ai.token.type";

    private readonly TimeProvider _time;

    private readonly Lock _spanLock = new();
    private readonly Ring<StoredSpan> _spans;
    // Spans of each trace in arrival order: a trace is read without scanning the window.
    private readonly Dictionary<string, List<StoredSpan>> _traces = new(StringComparer.Ordinal);
    // Summaries computed once per change of their trace: the list is polled far more often than spans arrive.
    private readonly Dictionary<string, TraceSummary> _summaries = new(StringComparer.Ordinal);
    private long _droppedSpans;

    private readonly Lock _logLock = new();
    private readonly Ring<LogRecordView> _logs;
    private long _lastLogId;
    private long _droppedLogs;

    private readonly Lock _metricLock = new();
    private readonly Dictionary<string, MetricSeries> _series = new(StringComparer.Ordinal);
    // The newest point time per resource: a series first seen after it is new since that export.
    private readonly Dictionary<string, ulong> _lastExport = new(StringComparer.Ordinal);
    private long _metricClock;
    private long _droppedPoints;
    private long _droppedSeries;

    public TelemetryStore(DashboardOptions options)
        : this(options, DefaultMaxSeries, TimeProvider.System)
    {
    }

    /// <param name="maxSeries">Metric series kept; the least recently updated goes first.</param>
    /// <param name="time">The clock for records without a time and for the metrics window.</param>
    public TelemetryStore(DashboardOptions options, int maxSeries, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSeries, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxSpans, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxLogRecords, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxMetricPoints, 1);
        Options = options;
        MaxSeries = maxSeries;
        _time = time;
        _spans = new Ring<StoredSpan>(options.MaxSpans);
        _logs = new Ring<LogRecordView>(options.MaxLogRecords);
    }

    public DashboardOptions Options { get; }

    public int MaxSeries { get; }

    public int SpanCount { get { lock (_spanLock) return _spans.Count; } }

    public long DroppedSpans { get { lock (_spanLock) return _droppedSpans; } }

    public int LogCount { get { lock (_logLock) return _logs.Count; } }

    public long DroppedLogs { get { lock (_logLock) return _droppedLogs; } }

    public int SeriesCount { get { lock (_metricLock) return _series.Count; } }

    /// <summary>Metric points dropped: the oldest of a full series, and every point of an evicted series.</summary>
    public long DroppedMetricPoints { get { lock (_metricLock) return _droppedPoints; } }

    public long DroppedSeries { get { lock (_metricLock) return _droppedSeries; } }

    // ---- ingest ---------------------------------------------------------------------------------------------------

    public void Add(ExportTraceServiceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var spans = new List<StoredSpan>();
        foreach (var resourceSpans in request.ResourceSpans)
        {
            var resource = OtlpValues.ResourceName(resourceSpans.Resource);
            foreach (var scopeSpans in resourceSpans.ScopeSpans)
            {
                var scope = OtlpValues.Cut(scopeSpans.Scope?.Name ?? "", OtlpValues.MaxNameChars);
                foreach (var span in scopeSpans.Spans)
                {
                    if (StoredSpan.From(span, resource, scope) is { } stored)
                        spans.Add(stored);
                }
            }
        }

        lock (_spanLock)
        {
            foreach (var span in spans)
            {
                if (_spans.Add(span, out var evicted))
                {
                    _droppedSpans++;
                    var siblings = _traces[evicted.TraceId];
                    siblings.Remove(evicted);
                    if (siblings.Count == 0)
                        _traces.Remove(evicted.TraceId);
                    _summaries.Remove(evicted.TraceId);
                }
                if (!_traces.TryGetValue(span.TraceId, out var trace))
                    _traces[span.TraceId] = trace = [];
                trace.Add(span);
                _summaries.Remove(span.TraceId);
            }
        }
    }

    public void Add(ExportLogsServiceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = _time.GetUtcNow();
        var records = new List<LogRecordView>();
        foreach (var resourceLogs in request.ResourceLogs)
        {
            var resource = OtlpValues.ResourceName(resourceLogs.Resource);
            foreach (var scopeLogs in resourceLogs.ScopeLogs)
            {
                // .NET's exporter names the scope after the logger's category.
                var category = OtlpValues.Cut(scopeLogs.Scope?.Name ?? "", OtlpValues.MaxNameChars);
                foreach (var log in scopeLogs.LogRecords)
                    records.Add(ToView(log, resource, category, now));
            }
        }

        lock (_logLock)
        {
            foreach (var record in records)
            {
                if (_logs.Add(record with { Id = ++_lastLogId }, out _))
                    _droppedLogs++;
            }
        }
    }

    public void Add(ExportMetricsServiceRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = OtlpValues.Nanos(_time.GetUtcNow());
        var received = new List<(MetricSeries Shape, List<MetricPoint> Points)>();
        foreach (var resourceMetrics in request.ResourceMetrics)
        {
            var resource = OtlpValues.ResourceName(resourceMetrics.Resource);
            foreach (var scopeMetrics in resourceMetrics.ScopeMetrics)
            {
                foreach (var metric in scopeMetrics.Metrics)
                    received.AddRange(MetricSeries.From(metric, resource, now));
            }
        }

        lock (_metricLock)
        {
            var previousExport = received.Select(r => r.Shape.Resource).Distinct()
                .ToDictionary(r => r, r => _lastExport.GetValueOrDefault(r), StringComparer.Ordinal);
            foreach (var (shape, points) in received)
            {
                if (!_series.TryGetValue(shape.Key, out var series))
                {
                    if (_series.Count >= MaxSeries)
                        EvictLeastRecentlyUpdated();
                    series = shape.WithCapacity(Options.MaxMetricPoints);
                    // New since the resource's previous export; on its first export, since the start of its counts.
                    series.NewSinceNanos = previousExport[shape.Resource] is > 0 and var previous ? previous
                        : points.Count > 0 ? points[0].StartNanos : 0;
                    _series[shape.Key] = series;
                }
                series.Touched = ++_metricClock;
                foreach (var point in points)
                {
                    if (series.Points.Count > 0 && point.TimeNanos <= series.Points.Newest.TimeNanos)
                        continue; // a repeated or late export: the series is in time order
                    if (series.Points.Add(point, out _))
                    {
                        _droppedPoints++;
                        series.NewSinceNanos = 0;
                    }
                    if (point.TimeNanos > _lastExport.GetValueOrDefault(shape.Resource))
                        _lastExport[shape.Resource] = point.TimeNanos;
                }
            }
            // Service names are few; a sender inventing one per export must not grow this without bound.
            if (_lastExport.Count > MaxSeries)
                _lastExport.Clear();
        }
    }

    private void EvictLeastRecentlyUpdated()
    {
        MetricSeries? oldest = null;
        foreach (var series in _series.Values)
        {
            if (oldest is null || series.Touched < oldest.Touched)
                oldest = series;
        }
        if (oldest is null)
            return;
        _series.Remove(oldest.Key);
        _droppedSeries++;
        _droppedPoints += oldest.Points.Count;
    }

    private static LogRecordView ToView(LogRecord log, string resource, string category, DateTimeOffset now)
    {
        var attributes = OtlpValues.Attributes(log.Attributes);
        var time = log.TimeUnixNano != 0 ? OtlpValues.Time(log.TimeUnixNano)
            : log.ObservedTimeUnixNano != 0 ? OtlpValues.Time(log.ObservedTimeUnixNano)
            : now;
        var message = log.Body?.ValueCase == AnyValue.ValueOneofCase.StringValue
            ? OtlpValues.Cut(log.Body.StringValue, 4 * OtlpValues.MaxValueChars)
            : OtlpValues.Cut(OtlpValues.Text(OtlpValues.Value(log.Body)), 4 * OtlpValues.MaxValueChars);
        return new LogRecordView(
            Id: 0,
            Time: time,
            Resource: resource,
            Level: Level(log.SeverityNumber),
            SeverityNumber: log.SeverityNumber,
            Category: category,
            Message: message,
            TraceId: OtlpValues.Id(log.TraceId),
            SpanId: OtlpValues.Id(log.SpanId),
            ExecutionId: attributes.GetValueOrDefault(AgentLabExecution.ExecutionIdKey) as string,
            Attributes: attributes);
    }

    /// <summary>OTLP severity numbers: 1–4 trace, 5–8 debug, 9–12 information, 13–16 warning, 17–20 error, 21–24 critical.</summary>
    public static LogLevelName Level(int severityNumber) => severityNumber switch
    {
        >= 1 and <= 4 => LogLevelName.Trace,
        >= 5 and <= 8 => LogLevelName.Debug,
        >= 13 and <= 16 => LogLevelName.Warning,
        >= 17 and <= 20 => LogLevelName.Error,
        >= 21 => LogLevelName.Critical,
        _ => LogLevelName.Information, // 9–12, and 0 (unspecified) for a sender that did not say
    };

    // ---- logs -----------------------------------------------------------------------------------------------------

    /// <summary>The newest matches (by arrival), in the order they were written (newest first), filtered: resource (exact), level and above, execution id and trace id (exact), text (case-insensitive, message or any attribute value).</summary>
    public LogsPage QueryLogs(LogQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var limit = Math.Max(0, query.Limit);
        var found = new List<LogRecordView>(Math.Min(limit, 1024));
        lock (_logLock)
        {
            foreach (var record in _logs.NewestFirst())
            {
                if (found.Count >= limit)
                    break;
                if (Matches(record, query))
                    found.Add(record);
            }
            // The window is in arrival order, and two services' batches interleave by up to an export interval:
            // the page reads newest first by the time each record was written (arrival breaks ties).
            found.Sort(static (a, b) => b.Time != a.Time ? b.Time.CompareTo(a.Time) : b.Id.CompareTo(a.Id));
            return new LogsPage(found, _logs.Count, _logs.Capacity, _droppedLogs);
        }
    }

    private static bool Matches(LogRecordView record, LogQuery query)
    {
        if (query.Resource is { Length: > 0 } resource && record.Resource != resource)
            return false;
        if (query.MinLevel is { } level && record.Level < level)
            return false;
        if (query.ExecutionId is { Length: > 0 } executionId && record.ExecutionId != executionId)
            return false;
        if (query.TraceId is { Length: > 0 } traceId && !string.Equals(record.TraceId, traceId, StringComparison.OrdinalIgnoreCase))
            return false;
        if (query.Text is { Length: > 0 } text)
        {
            return record.Message.Contains(text, StringComparison.OrdinalIgnoreCase)
                || record.Attributes.Values.Any(v => OtlpValues.Text(v).Contains(text, StringComparison.OrdinalIgnoreCase));
        }
        return true;
    }

    // ---- traces ---------------------------------------------------------------------------------------------------

    /// <summary>Trace summaries, newest first by trace start: a trace matches a resource when any of its spans comes from it.</summary>
    public TracesPage QueryTraces(TraceQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var summaries = new List<TraceSummary>();
        lock (_spanLock)
        {
            foreach (var (traceId, spans) in _traces)
            {
                if (!_summaries.TryGetValue(traceId, out var summary))
                    _summaries[traceId] = summary = Summarize(spans);
                if (query.Resource is { Length: > 0 } resource && !summary.Resources.Contains(resource))
                    continue;
                if (query.ExecutionId is { Length: > 0 } executionId && !summary.ExecutionIds.Contains(executionId))
                    continue;
                summaries.Add(summary);
            }
            var newest = summaries.OrderByDescending(s => s.Start).ThenBy(s => s.TraceId, StringComparer.Ordinal)
                .Take(Math.Max(0, query.Limit)).ToList();
            return new TracesPage(newest, _spans.Count, _spans.Capacity, _droppedSpans);
        }
    }

    /// <summary>The kept spans of a trace, depth-first (parent before children, siblings by start); null when none is kept.</summary>
    public TraceDetail? GetTrace(string traceId)
    {
        ArgumentNullException.ThrowIfNull(traceId);
        StoredSpan[] spans;
        lock (_spanLock)
        {
            if (!_traces.TryGetValue(traceId.ToLowerInvariant(), out var kept))
                return null;
            spans = [.. kept];
        }

        var start = spans.Min(s => s.StartNanos);
        var end = spans.Max(s => s.EndNanos);
        var ids = spans.Select(s => s.SpanId).ToHashSet(StringComparer.Ordinal);
        var children = spans.Where(s => s.ParentSpanId is { } parent && ids.Contains(parent))
            .GroupBy(s => s.ParentSpanId!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.OrderBy(s => s.StartNanos).ToList(), StringComparer.Ordinal);
        // Roots: no parent, or a parent not received (yet, or dropped): each starts a subtree of its own.
        var roots = spans.Where(s => s.ParentSpanId is not { } parent || !ids.Contains(parent)).OrderBy(s => s.StartNanos);

        var ordered = new List<SpanView>(spans.Length);
        var emitted = new HashSet<StoredSpan>(ReferenceEqualityComparer.Instance);
        var expanded = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<(StoredSpan Span, int Depth)>();
        foreach (var root in roots.Reverse())
            stack.Push((root, 0));
        while (stack.Count > 0)
        {
            var (span, depth) = stack.Pop();
            if (!emitted.Add(span))
                continue;
            ordered.Add(span.ToView(start, depth));
            // A span id sent twice (a buggy sender) must not repeat its subtree.
            if (expanded.Add(span.SpanId) && children.TryGetValue(span.SpanId, out var kids))
            {
                for (var k = kids.Count - 1; k >= 0; k--)
                    stack.Push((kids[k], depth + 1));
            }
        }
        // Spans whose parents form a cycle (never from a real SDK) have no root: list them last rather than hide them.
        foreach (var span in spans.Where(s => !emitted.Contains(s)).OrderBy(s => s.StartNanos))
            ordered.Add(span.ToView(start, 0));

        return new TraceDetail(traceId.ToLowerInvariant(), OtlpValues.Time(start), OtlpValues.Milliseconds(start, end),
            Resources(spans), ordered);
    }

    private static TraceSummary Summarize(List<StoredSpan> spans)
    {
        StoredSpan? root = null;
        StoredSpan earliest = spans[0];
        ulong start = ulong.MaxValue, end = 0;
        var errors = 0;
        foreach (var span in spans)
        {
            if (span.ParentSpanId is null && (root is null || span.StartNanos < root.StartNanos))
                root = span;
            if (span.StartNanos < earliest.StartNanos)
                earliest = span;
            start = Math.Min(start, span.StartNanos);
            end = Math.Max(end, span.EndNanos);
            if (span.Status == SpanStatusName.Error)
                errors++;
        }
        // The earliest span stands in while the root has not arrived (or was dropped): it is usually the top one kept.
        var head = root ?? earliest;
        // Every execution's trace is named POST /api/v1/execute: which execution, of what type, and how many model
        // calls are what tell the rows apart.
        var executionIds = Distinct(spans.Select(s => s.ExecutionId));
        var executionTypes = Distinct(spans.Select(s => s.ExecutionType));
        return new TraceSummary(head.TraceId, head.Name, head.Resource, Resources(spans), OtlpValues.Time(start),
            OtlpValues.Milliseconds(start, end), spans.Count, errors, errors > 0 ? SpanStatusName.Error : SpanStatusName.Ok,
            executionIds, executionTypes, spans.Count(s => s.IsGenAi));
    }

    private static List<string> Resources(IEnumerable<StoredSpan> spans) => Distinct(spans.Select(s => s.Resource));

    private static List<string> Distinct(IEnumerable<string?> values) =>
        values.OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    // ---- metrics --------------------------------------------------------------------------------------------------

    /// <summary>
    /// The dashboard's charts over the last <paramref name="window"/>: HTTP request rate and latency (p50/p95, ms) per
    /// resource from <c>http.server.request.duration</c>, model tokens per second per token type from
    /// <c>agentlab.model.tokens</c>, and every instrument received.
    /// </summary>
    public MetricsView GetMetrics(string? resource, TimeSpan window)
    {
        var since = OtlpValues.Nanos(_time.GetUtcNow() - window);
        List<MetricSeries> durations = [], tokens = [];
        var snapshots = new Dictionary<MetricSeries, SeriesPoints>();
        var instruments = new Dictionary<(string Resource, string Name), InstrumentView>();
        long droppedPoints, droppedSeries;
        lock (_metricLock)
        {
            foreach (var series in _series.Values)
            {
                var key = (series.Resource, series.Name);
                instruments[key] = instruments.TryGetValue(key, out var known)
                    ? known with { Points = known.Points + series.Points.Count, Series = known.Series + 1 }
                    : new InstrumentView(series.Resource, series.Name, series.Unit, series.Type, series.Points.Count, 1);
                if (resource is { Length: > 0 } && series.Resource != resource)
                    continue;
                if (series.Name == RequestDurationMetric && series.Type == MetricSeries.HistogramType)
                    durations.Add(series);
                else if (series.Name == TokensMetric && series.Type == MetricSeries.SumType)
                    tokens.Add(series);
                else
                    continue;
                snapshots[series] = new SeriesPoints(series.Points.ToArray(), series.NewSinceNanos);
            }
            droppedPoints = _droppedPoints;
            droppedSeries = _droppedSeries;
        }

        var rate = new List<ChartSeries>();
        var latency = new List<ChartSeries>();
        foreach (var group in durations.GroupBy(s => s.Resource).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var intervals = MetricMath.Intervals(group.Select(s => snapshots[s]))
                .Where(i => i.TimeNanos >= since).ToList();
            var toMs = UnitToMilliseconds(group.First().Unit);
            rate.Add(new ChartSeries(group.Key, group.Key, intervals.Where(i => i.Seconds > 0).Select(i => Point(i.TimeNanos, i.Rate)).ToList()));
            latency.Add(new ChartSeries(group.Key, group.Key + " p50", Quantiles(intervals, 0.50, toMs)));
            latency.Add(new ChartSeries(group.Key, group.Key + " p95", Quantiles(intervals, 0.95, toMs)));
        }

        var tokensPerSecond = new List<ChartSeries>();
        foreach (var group in tokens.GroupBy(s => (s.Resource, Type: s.Attributes.GetValueOrDefault(TokenTypeAttribute) as string ?? "tokens"))
                     .OrderBy(g => g.Key.Resource, StringComparer.Ordinal).ThenByDescending(g => g.Key.Type, StringComparer.Ordinal))
        {
            var intervals = MetricMath.Intervals(group.Select(s => snapshots[s]));
            tokensPerSecond.Add(new ChartSeries(group.Key.Resource, group.Key.Type,
                intervals.Where(i => i.TimeNanos >= since && i.Seconds > 0).Select(i => Point(i.TimeNanos, i.Rate)).ToList()));
        }

        var charts = new List<MetricChart>
        {
            new("request_rate", "HTTP requests per second", "req/s", rate),
            new("latency", "HTTP server latency (p50 / p95)", "ms", latency),
            new("tokens_per_second", "Model tokens per second", "tokens/s", tokensPerSecond),
        };
        var listed = instruments.Values
            .Where(i => resource is not { Length: > 0 } || i.Resource == resource)
            .OrderBy(i => i.Resource, StringComparer.Ordinal).ThenBy(i => i.Name, StringComparer.Ordinal).ToList();
        return new MetricsView(charts, listed, droppedPoints, droppedSeries);
    }

    private static List<ChartPoint> Quantiles(List<MetricInterval> intervals, double quantile, double toMs)
    {
        var points = new List<ChartPoint>();
        foreach (var interval in intervals)
        {
            if (interval.Buckets is { } buckets && interval.Bounds is { } bounds
                && MetricMath.Percentile(buckets, bounds, quantile) is { } value)
                points.Add(Point(interval.TimeNanos, value * toMs));
        }
        return points;
    }

    private static ChartPoint Point(ulong timeNanos, double value) =>
        new(OtlpValues.Time(timeNanos), double.IsFinite(value) ? Math.Round(value, 6) : 0);

    private static double UnitToMilliseconds(string unit) => unit switch
    {
        "ms" => 1,
        "us" => 0.001,
        "ns" => 0.000001,
        "min" => 60_000,
        _ => 1000, // "s", the semantic conventions' unit for durations
    };
}
