using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using AgentLab.Tests.Support;
using Google.Protobuf;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>Hand-built OTLP requests, as an exporter would send them.</summary>
internal static class OtlpFake
{
    // Fixed when the class loads (tests build exact timelines from it); the stores under test read the same instant.
    public static readonly ulong Now = OtlpNanos(DateTimeOffset.UtcNow);

    public static ulong OtlpNanos(DateTimeOffset time) => (ulong)(time - DateTimeOffset.UnixEpoch).Ticks * 100;

    public static ulong Seconds(double s) => (ulong)(s * 1e9);

    public static string TraceId(int n) => n.ToString("x32", System.Globalization.CultureInfo.InvariantCulture);

    public static string SpanId(int n) => n.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    public static Resource Resource(string service) => new() { Attributes = { Attr("service.name", service) } };

    public static KeyValue Attr(string key, object value) => new() { Key = key, Value = Any(value) };

    public static AnyValue Any(object value) => value switch
    {
        string s => new AnyValue { StringValue = s },
        bool b => new AnyValue { BoolValue = b },
        int i => new AnyValue { IntValue = i },
        long l => new AnyValue { IntValue = l },
        double d => new AnyValue { DoubleValue = d },
        object[] items => new AnyValue { ArrayValue = new ArrayValue { Values = { items.Select(Any) } } },
        _ => throw new ArgumentException($"no AnyValue for {value.GetType()}"),
    };

    public static Span Span(string traceId, string spanId, string? parentId, string name, double startSeconds, double endSeconds,
        params (string Key, object Value)[] attributes)
    {
        var span = new Span
        {
            TraceId = ByteString.CopyFrom(Convert.FromHexString(traceId)),
            SpanId = ByteString.CopyFrom(Convert.FromHexString(spanId)),
            Name = name,
            Kind = AgentLab.AppHost.Dashboard.Telemetry.Otlp.Span.Types.SpanKind.Internal,
            StartTimeUnixNano = Now + Seconds(startSeconds),
            EndTimeUnixNano = Now + Seconds(endSeconds),
        };
        if (parentId is not null)
            span.ParentSpanId = ByteString.CopyFrom(Convert.FromHexString(parentId));
        span.Attributes.AddRange(attributes.Select(a => Attr(a.Key, a.Value)));
        return span;
    }

    public static ExportTraceServiceRequest Spans(string service, params Span[] spans) => new()
    {
        ResourceSpans = { new ResourceSpans { Resource = Resource(service), ScopeSpans = { new ScopeSpans { Scope = new() { Name = "Test.Scope" }, Spans = { spans } } } } },
    };

    public static LogRecord Log(int severity, string message, params (string Key, object Value)[] attributes)
    {
        var log = new LogRecord { SeverityNumber = severity, Body = Any(message), TimeUnixNano = Now };
        log.Attributes.AddRange(attributes.Select(a => Attr(a.Key, a.Value)));
        return log;
    }

    public static ExportLogsServiceRequest Logs(string service, params LogRecord[] records) => new()
    {
        ResourceLogs = { new ResourceLogs { Resource = Resource(service), ScopeLogs = { new ScopeLogs { Scope = new() { Name = "Test.Category" }, LogRecords = { records } } } } },
    };

    public static ExportMetricsServiceRequest Metrics(string service, params Metric[] metrics) => new()
    {
        ResourceMetrics = { new ResourceMetrics { Resource = Resource(service), ScopeMetrics = { new ScopeMetrics { Metrics = { metrics } } } } },
    };

    public static Metric Counter(string name, ulong start, ulong time, long value, AggregationTemporality temporality = AggregationTemporality.Cumulative,
        params (string Key, object Value)[] attributes)
    {
        var point = new NumberDataPoint { StartTimeUnixNano = start, TimeUnixNano = time, AsInt = value };
        point.Attributes.AddRange(attributes.Select(a => Attr(a.Key, a.Value)));
        return new Metric { Name = name, Unit = "{token}", Sum = new Sum { AggregationTemporality = temporality, IsMonotonic = true, DataPoints = { point } } };
    }

    public static Metric Histogram(string name, ulong start, ulong time, double[] bounds, ulong[] buckets, string route = "/a",
        AggregationTemporality temporality = AggregationTemporality.Cumulative)
    {
        var point = new HistogramDataPoint
        {
            StartTimeUnixNano = start, TimeUnixNano = time, Count = (ulong)buckets.Sum(b => (long)b), Sum = 1,
            ExplicitBounds = { bounds }, BucketCounts = { buckets }, Attributes = { Attr("http.route", route) },
        };
        return new Metric { Name = name, Unit = "s", Histogram = new Histogram { AggregationTemporality = temporality, DataPoints = { point } } };
    }
}

public sealed class TelemetryStoreTests
{
    // The clock is stopped at OtlpFake.Now: the metrics window does not slide while the suite runs.
    private static TelemetryStore NewStore(int maxSpans = 1000, int maxLogs = 1000, int maxPoints = 100, int maxSeries = TelemetryStore.DefaultMaxSeries) =>
        new(new DashboardOptions { MaxSpans = maxSpans, MaxLogRecords = maxLogs, MaxMetricPoints = maxPoints }, maxSeries, new StoppedClock(DateTimeOffset.UnixEpoch.AddTicks((long)(OtlpFake.Now / 100))));

    // ---- bounds ----

    [Fact]
    public void Spans_MoreThanMaxSpans_KeepsNewestAndCountsDropped()
    {
        var store = NewStore(maxSpans: 100);

        for (var i = 1; i <= 250; i++)
            store.Add(OtlpFake.Spans("svc", OtlpFake.Span(OtlpFake.TraceId(i), OtlpFake.SpanId(i), null, $"span {i}", i, i + 1)));
        var page = store.QueryTraces(new TraceQuery(Limit: 1000));

        Assert.Equal(100, store.SpanCount);
        Assert.Equal(150, store.DroppedSpans);
        Assert.Null(store.GetTrace(OtlpFake.TraceId(150)));
        Assert.NotNull(store.GetTrace(OtlpFake.TraceId(151)));
        Assert.Equal(100, page.Traces.Count);
        Assert.Equal((100, 100, 150L), (page.Kept, page.Capacity, page.Dropped));
        Assert.Equal("span 250", page.Traces[0].Name);
    }

    [Fact]
    public void Spans_OldestOfATraceDropped_TraceKeepsTheRest()
    {
        var store = NewStore(maxSpans: 100);
        var trace = OtlpFake.TraceId(7);

        store.Add(OtlpFake.Spans("svc", OtlpFake.Span(trace, OtlpFake.SpanId(1), null, "root", 0, 10)));
        for (var i = 2; i <= 101; i++)
            store.Add(OtlpFake.Spans("svc", OtlpFake.Span(trace, OtlpFake.SpanId(i), OtlpFake.SpanId(1), $"child {i}", 1, 2)));
        var detail = store.GetTrace(trace)!;

        Assert.Equal(100, detail.Spans.Count);
        Assert.DoesNotContain(detail.Spans, s => s.Name == "root");
        Assert.All(detail.Spans, s => Assert.Equal(0, s.Depth)); // parent not kept: each is a root of its own
    }

    [Fact]
    public void Logs_MoreThanMaxLogRecords_KeepsNewestWithIncreasingIds()
    {
        var store = NewStore(maxLogs: 100);

        for (var i = 1; i <= 250; i++)
            store.Add(OtlpFake.Logs("svc", OtlpFake.Log(9, $"line {i}")));
        var page = store.QueryLogs(new LogQuery(Limit: 1000));

        Assert.Equal((100, 100, 150L), (page.Kept, page.Capacity, page.Dropped));
        Assert.Equal(100, page.Records.Count);
        Assert.Equal("line 250", page.Records[0].Message);
        Assert.Equal("line 151", page.Records[^1].Message);
        Assert.Equal(Enumerable.Range(151, 100).Reverse().Select(i => (long)i), page.Records.Select(r => r.Id));
    }

    [Fact]
    public void Logs_BatchesArrivingOutOfOrder_ReadNewestWrittenFirst()
    {
        var store = NewStore();
        LogRecord At(double seconds, string message)
        {
            var log = OtlpFake.Log(9, message);
            log.TimeUnixNano = OtlpFake.Now + OtlpFake.Seconds(seconds);
            return log;
        }

        // The labservice's batch was written in between the backend's lines but arrives after them.
        store.Add(OtlpFake.Logs("backend", At(0.1, "backend accepted"), At(0.9, "backend completed")));
        store.Add(OtlpFake.Logs("labservice", At(0.3, "lab started"), At(0.6, "lab answered")));
        store.Add(OtlpFake.Logs("backend", At(0.9, "backend logged the same instant")));
        var messages = store.QueryLogs(new LogQuery()).Records.Select(r => r.Message);

        Assert.Equal(["backend logged the same instant", "backend completed", "lab answered", "lab started", "backend accepted"], messages);
    }

    [Fact]
    public void Metrics_MoreThanMaxMetricPoints_KeepsNewestPointsPerSeries()
    {
        var store = NewStore(maxPoints: 10);
        var start = OtlpFake.Now - OtlpFake.Seconds(100);

        for (var i = 1; i <= 25; i++)
            store.Add(OtlpFake.Metrics("svc", OtlpFake.Counter("c", start, start + OtlpFake.Seconds(i), i)));
        var instrument = Assert.Single(store.GetMetrics(null, TimeSpan.FromHours(1)).Instruments);

        Assert.Equal(10, instrument.Points);
        Assert.Equal(15, store.DroppedMetricPoints);
        Assert.Equal("sum", instrument.Type);
    }

    [Fact]
    public void Metrics_MoreSeriesThanTheCap_EvictsTheLeastRecentlyUpdated()
    {
        var store = NewStore(maxSeries: 5);
        var start = OtlpFake.Now - OtlpFake.Seconds(100);
        void Send(int n, int second) => store.Add(OtlpFake.Metrics("svc", OtlpFake.Counter($"m{n}", start, start + OtlpFake.Seconds(second), 1)));

        for (var n = 0; n < 5; n++)
            Send(n, 1);
        Send(0, 2); // m0 is fresh again: m1 is now the least recently updated
        Send(5, 3);
        Send(6, 4);
        var names = store.GetMetrics(null, TimeSpan.FromHours(1)).Instruments.Select(i => i.Name).ToList();

        Assert.Equal(5, store.SeriesCount);
        Assert.Equal(2, store.DroppedSeries);
        Assert.Equal(["m0", "m3", "m4", "m5", "m6"], names);
    }

    [Fact]
    public void Attributes_TooManyOrTooLong_AreBounded()
    {
        var store = NewStore();
        var many = Enumerable.Range(0, 200).Select(i => ($"k{i:D3}", (object)"v")).Append(("long", new string('x', 5000))).ToArray();

        store.Add(OtlpFake.Spans("svc", OtlpFake.Span(OtlpFake.TraceId(1), OtlpFake.SpanId(1), null, "s", 0, 1,
            [("long", new string('x', 5000)), .. many])));
        var attributes = store.GetTrace(OtlpFake.TraceId(1))!.Spans[0].Attributes;

        Assert.Equal(128, attributes.Count);
        var cut = Assert.IsType<string>(attributes["long"]);
        Assert.Equal(4097, cut.Length);
        Assert.EndsWith("x…", cut, StringComparison.Ordinal);
    }

    [Fact]
    public void Resource_WithoutServiceName_IsUnknownService()
    {
        var store = NewStore();
        var request = OtlpFake.Logs("svc", OtlpFake.Log(9, "m"));
        request.ResourceLogs[0].Resource = new Resource();

        store.Add(request);

        Assert.Equal("unknown_service", store.QueryLogs(new LogQuery()).Records.Single().Resource);
    }

    // ---- filters ----

    [Fact]
    public void QueryLogs_Filters_ByResourceLevelExecutionIdTraceIdAndText()
    {
        var store = NewStore();
        var withTrace = OtlpFake.Log(17, "boom in backend", ("agentlab.execution_id", "exec-1"));
        withTrace.TraceId = ByteString.CopyFrom(Convert.FromHexString(OtlpFake.TraceId(42)));
        store.Add(OtlpFake.Logs("backend",
            OtlpFake.Log(9, "info in backend", ("agentlab.execution_id", "exec-1")),
            OtlpFake.Log(13, "warn in backend", ("Route", "/api/v1/Execute")),
            withTrace));
        store.Add(OtlpFake.Logs("labservice",
            OtlpFake.Log(21, "critical in lab", ("agentlab.execution_id", "exec-2")),
            OtlpFake.Log(5, "debug in lab", ("agentlab.execution_id", "exec-1"))));
        string[] Messages(LogQuery query) => store.QueryLogs(query).Records.Select(r => r.Message).ToArray();

        Assert.Equal(["boom in backend", "warn in backend", "info in backend"], Messages(new LogQuery(Resource: "backend")));
        Assert.Equal(["critical in lab", "boom in backend", "warn in backend"], Messages(new LogQuery(MinLevel: LogLevelName.Warning)));
        Assert.Equal(["debug in lab", "boom in backend", "info in backend"], Messages(new LogQuery(ExecutionId: "exec-1")));
        Assert.Equal(["warn in backend"], Messages(new LogQuery(Text: "API/V1/EXECUTE")));
        Assert.Equal(["critical in lab"], Messages(new LogQuery(Text: "CRITICAL")));
        Assert.Equal(["boom in backend"], Messages(new LogQuery(TraceId: OtlpFake.TraceId(42))));
        Assert.Equal(["debug in lab"], Messages(new LogQuery(Resource: "labservice", ExecutionId: "exec-1")));
        Assert.Equal(["debug in lab"], Messages(new LogQuery(Limit: 1)));
        var boom = store.QueryLogs(new LogQuery(MinLevel: LogLevelName.Error, Resource: "backend")).Records.Single();
        Assert.Equal((LogLevelName.Error, 17, "exec-1", "Test.Category"), (boom.Level, boom.SeverityNumber, boom.ExecutionId, boom.Category));
    }

    [Theory]
    [InlineData(1, LogLevelName.Trace)]
    [InlineData(4, LogLevelName.Trace)]
    [InlineData(5, LogLevelName.Debug)]
    [InlineData(9, LogLevelName.Information)]
    [InlineData(12, LogLevelName.Information)]
    [InlineData(13, LogLevelName.Warning)]
    [InlineData(17, LogLevelName.Error)]
    [InlineData(20, LogLevelName.Error)]
    [InlineData(21, LogLevelName.Critical)]
    [InlineData(24, LogLevelName.Critical)]
    public void Level_FromSeverityNumber_FollowsOtlpRanges(int severity, LogLevelName expected) =>
        Assert.Equal(expected, TelemetryStore.Level(severity));

    [Fact]
    public void QueryTraces_Filters_ByAnySpansResourceAndExecutionId()
    {
        var store = NewStore();
        var (t1, t2, t3) = (OtlpFake.TraceId(1), OtlpFake.TraceId(2), OtlpFake.TraceId(3));
        store.Add(OtlpFake.Spans("backend",
            OtlpFake.Span(t1, OtlpFake.SpanId(1), null, "POST /api/v1/execute", 0, 5, ("agentlab.execution_id", "exec-1"), ("agentlab.execution_type", "orchestrator")),
            OtlpFake.Span(t2, OtlpFake.SpanId(3), null, "GET /api/v1/history", 10, 11)));
        store.Add(OtlpFake.Spans("labservice",
            OtlpFake.Span(t1, OtlpFake.SpanId(2), OtlpFake.SpanId(1), "POST /orchestrate/", 1, 4, ("agentlab.execution_id", "exec-1"), ("agentlab.execution_type", "orchestrator")),
            OtlpFake.Span(t1, OtlpFake.SpanId(5), OtlpFake.SpanId(2), "chat mistral:7b", 2, 3, ("gen_ai.operation.name", "chat"), ("agentlab.execution_id", "exec-1")),
            OtlpFake.Span(t3, OtlpFake.SpanId(4), null, "GET /models/", 20, 21, ("agentlab.execution_id", "exec-10"))));
        string[] Ids(TraceQuery query) => store.QueryTraces(query).Traces.Select(t => t.TraceId).ToArray();

        Assert.Equal([t3, t2, t1], Ids(new TraceQuery()));
        Assert.Equal([t2, t1], Ids(new TraceQuery(Resource: "backend")));
        Assert.Equal([t3, t1], Ids(new TraceQuery(Resource: "labservice")));
        Assert.Equal([t1], Ids(new TraceQuery(ExecutionId: "exec-1")));
        Assert.Equal([t3], Ids(new TraceQuery(Resource: "labservice", ExecutionId: "exec-10")));
        Assert.Empty(Ids(new TraceQuery(ExecutionId: "exec")));
        var summary = store.QueryTraces(new TraceQuery(ExecutionId: "exec-1")).Traces.Single();
        Assert.Equal(("POST /api/v1/execute", "backend", 3, 5000.0), (summary.Name, summary.Resource, summary.SpanCount, summary.DurationMs));
        Assert.Equal(["backend", "labservice"], summary.Resources);
        Assert.Equal(["exec-1"], summary.ExecutionIds);
        Assert.Equal(["orchestrator"], summary.ExecutionTypes);
        Assert.Equal(1, summary.ModelCalls);
        var other = store.QueryTraces(new TraceQuery(ExecutionId: "exec-10")).Traces.Single();
        Assert.Equal((0, 0), (other.ExecutionTypes.Count, other.ModelCalls));
    }

    // ---- the trace tree ----

    [Fact]
    public void GetTrace_SpansArriveChildFirst_OrderedDepthFirstWithSiblingsByStart()
    {
        var store = NewStore();
        var t = OtlpFake.TraceId(9);
        var error = OtlpFake.Span(t, OtlpFake.SpanId(4), OtlpFake.SpanId(2), "grandchild", 2, 3);
        error.Status = new Status { Code = Status.Types.StatusCode.Error, Message = "model failed" };

        store.Add(OtlpFake.Spans("labservice", error, OtlpFake.Span(t, OtlpFake.SpanId(3), OtlpFake.SpanId(1), "second child", 5, 6)));
        store.Add(OtlpFake.Spans("backend",
            OtlpFake.Span(t, OtlpFake.SpanId(2), OtlpFake.SpanId(1), "first child", 1, 4),
            OtlpFake.Span(t, OtlpFake.SpanId(1), null, "root", 0, 10)));
        var detail = store.GetTrace(t.ToUpperInvariant())!;
        var summary = store.QueryTraces(new TraceQuery()).Traces.Single();

        Assert.Equal(["root", "first child", "grandchild", "second child"], detail.Spans.Select(s => s.Name));
        Assert.Equal([0, 1, 2, 1], detail.Spans.Select(s => s.Depth));
        Assert.Equal([0.0, 1000.0, 2000.0, 5000.0], detail.Spans.Select(s => s.OffsetMs));
        Assert.Equal(10_000.0, detail.DurationMs);
        Assert.Equal(t, detail.TraceId);
        Assert.Equal(OtlpFake.SpanId(2), detail.Spans[2].ParentSpanId);
        Assert.Null(detail.Spans[0].ParentSpanId);
        Assert.Equal((SpanStatusName.Error, "model failed"), (detail.Spans[2].Status, detail.Spans[2].StatusMessage));
        Assert.Equal(("root", "backend", SpanStatusName.Error, 1), (summary.Name, summary.Resource, summary.Status, summary.ErrorCount));
    }

    [Fact]
    public void GetTrace_GenAiAttributes_MarkTheSpan()
    {
        var store = NewStore();
        var t = OtlpFake.TraceId(5);

        store.Add(OtlpFake.Spans("labservice",
            OtlpFake.Span(t, OtlpFake.SpanId(1), null, "chat mistral:7b", 0, 1, ("gen_ai.request.model", "mistral:7b"), ("gen_ai.usage.output_tokens", 12L)),
            OtlpFake.Span(t, OtlpFake.SpanId(2), OtlpFake.SpanId(1), "http", 0, 1, ("http.route", "/api/chat"))));
        var spans = store.GetTrace(t)!.Spans;

        Assert.True(spans[0].IsGenAi);
        Assert.False(spans[1].IsGenAi);
        Assert.Equal(12L, spans[0].Attributes["gen_ai.usage.output_tokens"]);
    }

    // ---- metric math ----

    [Fact]
    public void Intervals_CumulativeCounterWithReset_NeverNegativeAndCountsFromZero()
    {
        var s = OtlpFake.Seconds;
        MetricPoint P(double at, double value, ulong start = 1) => new(start, s(1000 + at), Delta: false, Monotonic: true, value);

        var intervals = MetricMath.Intervals([[P(0, 10), P(10, 30), P(20, 5), P(30, 15), P(40, 50, start: 7)]]);

        Assert.Equal([2.0, 0.5, 1.0, 5.0], intervals.Select(i => i.Rate));
        Assert.All(intervals, i => Assert.Equal(10, i.Seconds));
    }

    [Fact]
    public void Intervals_DeltaTemporality_PointIsTheChange()
    {
        var s = OtlpFake.Seconds;
        MetricPoint P(double from, double to, double value) => new(s(1000 + from), s(1000 + to), Delta: true, Monotonic: true, value);

        var intervals = MetricMath.Intervals([[P(0, 10, 20), P(10, 20, 40), P(20, 25, 0)]]);

        Assert.Equal([2.0, 4.0, 0.0], intervals.Select(i => i.Rate));
        Assert.Equal([10.0, 10.0, 5.0], intervals.Select(i => i.Seconds));
    }

    [Fact]
    public void Intervals_SeveralSeries_SumAndANewSeriesCountsWhole()
    {
        var s = OtlpFake.Seconds;
        MetricPoint P(double at, double value) => new(1, s(1000 + at), Delta: false, Monotonic: true, value);

        var intervals = MetricMath.Intervals([[P(0, 10), P(10, 20), P(20, 30)], [P(10, 4), P(20, 6)]]);

        // t=10: a +10, b new with 4; t=20: a +10, b +2
        Assert.Equal([14.0, 12.0], intervals.Select(i => i.Value));
    }

    [Theory]
    [InlineData(new ulong[] { 2, 2, 0 }, 0.5, 0.1)]
    [InlineData(new ulong[] { 2, 2, 0 }, 0.95, 0.19)]
    [InlineData(new ulong[] { 0, 4, 0 }, 0.5, 0.15)]
    [InlineData(new ulong[] { 0, 0, 4 }, 0.5, 0.2)] // +Inf bucket: its lower bound
    [InlineData(new ulong[] { 1, 0, 3 }, 0.25, 0.1)]
    public void Percentile_LinearWithinBucket_InfUsesPreviousBound(ulong[] buckets, double quantile, double expected) =>
        Assert.Equal(expected, MetricMath.Percentile(buckets, [0.1, 0.2], quantile)!.Value, 9);

    [Fact]
    public void Percentile_NoCounts_IsNull() => Assert.Null(MetricMath.Percentile([0, 0, 0], [0.1, 0.2], 0.5));

    [Fact]
    public void GetMetrics_HistogramsOfTwoRoutes_RateAndLatencyPerResource()
    {
        var store = NewStore();
        var start = OtlpFake.Now - OtlpFake.Seconds(60);
        double[] bounds = [0.1, 0.2];
        var (t0, t1) = (OtlpFake.Now - OtlpFake.Seconds(20), OtlpFake.Now - OtlpFake.Seconds(10));
        store.Add(OtlpFake.Metrics("backend",
            OtlpFake.Histogram("http.server.request.duration", start, t0, bounds, [5, 0, 0], "/a"),
            OtlpFake.Histogram("http.server.request.duration", start, t0, bounds, [0, 1, 0], "/b")));

        store.Add(OtlpFake.Metrics("backend",
            OtlpFake.Histogram("http.server.request.duration", start, t1, bounds, [7, 0, 0], "/a"),
            OtlpFake.Histogram("http.server.request.duration", start, t1, bounds, [0, 3, 0], "/b")));
        store.Add(OtlpFake.Metrics("labservice",
            OtlpFake.Counter("agentlab.model.tokens", start, t0, 100, attributes: [("gen_ai.token.type", "output")]),
            OtlpFake.Counter("agentlab.model.tokens", start, t1, 150, attributes: [("gen_ai.token.type", "output")]),
            OtlpFake.Counter("agentlab.model.tokens", start, t1, 30, attributes: [("gen_ai.token.type", "input")])));
        var view = store.GetMetrics(null, TimeSpan.FromMinutes(15));
        ChartSeries Series(string chart, string name) => view.Charts.Single(c => c.Id == chart).Series.Single(x => x.Name == name);

        // First export: all 6 requests since the start time, 40 s before; p50 = rank 3 of 5 in the first bucket.
        // Then Δ: /a +2 in the first bucket, /b +2 in the second: 4 requests in 10 s; p50 at the first bucket's top.
        Assert.Equal([0.15, 0.4], Series("request_rate", "backend").Points.Select(p => Math.Round(p.Value, 9)));
        Assert.Equal([60.0, 100.0], Series("latency", "backend p50").Points.Select(p => Math.Round(p.Value, 6)));
        Assert.Equal(190, Series("latency", "backend p95").Points[^1].Value, 6);
        Assert.Equal([2.5, 5.0], Series("tokens_per_second", "output").Points.Select(p => Math.Round(p.Value, 9)));
        Assert.Equal("labservice", Series("tokens_per_second", "output").Resource);
        Assert.Empty(store.GetMetrics("labservice", TimeSpan.FromMinutes(15)).Charts.Single(c => c.Id == "request_rate").Series);
        var durations = view.Instruments.Single(i => i.Name == "http.server.request.duration");
        Assert.Equal(("backend", "s", "histogram", 4, 2), (durations.Resource, durations.Unit, durations.Type, durations.Points, durations.Series));
    }

    [Fact]
    public void GetMetrics_SeriesFirstSeenAfterAnExport_CountsWholeSinceThatExport()
    {
        var store = NewStore();
        var start = OtlpFake.Now - OtlpFake.Seconds(600);
        var (t0, t1) = (OtlpFake.Now - OtlpFake.Seconds(20), OtlpFake.Now - OtlpFake.Seconds(10));
        store.Add(OtlpFake.Metrics("labservice", OtlpFake.Counter("process.cpu.count", start, t0, 2)));

        store.Add(OtlpFake.Metrics("labservice", OtlpFake.Counter("agentlab.model.tokens", start, t1, 40, attributes: [("gen_ai.token.type", "output")])));
        var points = store.GetMetrics(null, TimeSpan.FromMinutes(15)).Charts.Single(c => c.Id == "tokens_per_second").Series.Single().Points;

        // The first model call came after the export at t0: 40 tokens in the 10 s since, not in the 590 s since start.
        Assert.Equal(4.0, Assert.Single(points).Value, 9);
    }

    [Fact]
    public void GetMetrics_PointsOlderThanTheWindow_AreLeftOut()
    {
        var store = NewStore();
        var start = OtlpFake.Now - OtlpFake.Seconds(3600);
        foreach (var ago in new[] { 1200, 1190, 20, 10 })
            store.Add(OtlpFake.Metrics("labservice", OtlpFake.Counter("agentlab.model.tokens", start, OtlpFake.Now - OtlpFake.Seconds(ago), 5000 - ago)));

        var points = store.GetMetrics(null, TimeSpan.FromMinutes(15)).Charts.Single(c => c.Id == "tokens_per_second").Series.Single().Points;

        Assert.Equal(2, points.Count); // the 20 s ago point compares with the 1190 s ago one (outside), still shown
        Assert.Equal(1.0, points[^1].Value, 9);
    }
}
