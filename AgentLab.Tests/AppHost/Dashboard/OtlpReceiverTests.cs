using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>The OTLP receiver on a free port over its own store.</summary>
internal sealed class TestReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestReceiver(WebApplication app, TelemetryStore store)
    {
        _app = app;
        Store = store;
        Url = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First() + "/");
    }

    public const string ApiKey = "receiver-test-key-0123456789";

    public TelemetryStore Store { get; }

    /// <summary>Base address ending in "/".</summary>
    public Uri Url { get; }

    public static async Task<TestReceiver> StartAsync(DashboardOptions? options = null)
    {
        var store = new TelemetryStore(options ?? new DashboardOptions());
        var app = await OtlpReceiver.StartAsync(store, port: 0, ApiKey, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30));
        return new TestReceiver(app, store);
    }

    /// <summary>A client for raw posts that sends the receiver's key (or <paramref name="apiKey"/>; null sends none).</summary>
    public HttpClient Client(string? apiKey = ApiKey)
    {
        var http = new HttpClient { BaseAddress = Url };
        if (apiKey is not null)
            http.DefaultRequestHeaders.Add(OtlpReceiver.ApiKeyHeader, apiKey);
        return http;
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

public sealed class OtlpReceiverTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void Otlp(OtlpExporterOptions o, TestReceiver receiver, string path)
    {
        o.Endpoint = new Uri(receiver.Url, path);
        o.Protocol = OtlpExportProtocol.HttpProtobuf;
        o.Headers = $"{OtlpReceiver.ApiKeyHeader}={TestReceiver.ApiKey}";
    }

    [Fact]
    public async Task Traces_FromTheRealOtlpExporter_AreStoredExactly()
    {
        await using var receiver = await TestReceiver.StartAsync();
        var service = "otlp-traces-" + Guid.NewGuid().ToString("N");
        using var source = new ActivitySource("OtlpTest." + Guid.NewGuid().ToString("N"));
        using var provider = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(service))
            .AddSource(source.Name)
            .AddOtlpExporter(o =>
            {
                Otlp(o, receiver, "v1/traces");
                o.ExportProcessorType = ExportProcessorType.Simple;
            })
            .Build();

        Activity parent, child;
        using (parent = source.StartActivity("parent op", ActivityKind.Server)!)
        {
            parent.SetTag("text", "hello <b>");
            parent.SetTag("count", 42);
            parent.SetTag("ratio", 0.25);
            parent.SetTag("flag", true);
            parent.SetTag("tags", new[] { "a", "b" });
            parent.SetTag("agentlab.execution_id", "exec-traces");
            using (child = source.StartActivity("chat mistral:7b", ActivityKind.Client)!)
            {
                child.SetTag("gen_ai.request.model", "mistral:7b");
                child.AddEvent(new ActivityEvent("exception", tags: new ActivityTagsCollection { ["exception.type"] = "Boom" }));
                child.SetStatus(ActivityStatusCode.Error, "model failed");
            }
        }
        provider.ForceFlush(10_000);
        var trace = receiver.Store.GetTrace(parent.TraceId.ToHexString());
        var summary = receiver.Store.QueryTraces(new TraceQuery(ExecutionId: "exec-traces")).Traces.Single();

        Assert.NotNull(trace);
        Assert.Equal(parent.TraceId.ToHexString(), trace.TraceId);
        Assert.Equal([parent.SpanId.ToHexString(), child.SpanId.ToHexString()], trace.Spans.Select(s => s.SpanId));
        var (p, c) = (trace.Spans[0], trace.Spans[1]);
        Assert.Equal((0, 1), (p.Depth, c.Depth));
        Assert.Null(p.ParentSpanId);
        Assert.Equal(parent.SpanId.ToHexString(), c.ParentSpanId);
        Assert.Equal(("parent op", SpanKindName.Server, SpanStatusName.Unset, service, source.Name), (p.Name, p.Kind, p.Status, p.Resource, p.Scope));
        Assert.Equal(("chat mistral:7b", SpanKindName.Client, SpanStatusName.Error, "model failed"), (c.Name, c.Kind, c.Status, c.StatusMessage));
        Assert.Equal(parent.Duration.TotalMilliseconds, p.DurationMs, 3);
        Assert.Equal(child.Duration.TotalMilliseconds, c.DurationMs, 3);
        Assert.Equal((child.StartTimeUtc - parent.StartTimeUtc).TotalMilliseconds, c.OffsetMs, 3);
        Assert.Equal("hello <b>", p.Attributes["text"]);
        Assert.Equal(42L, p.Attributes["count"]);
        Assert.Equal(0.25, p.Attributes["ratio"]);
        Assert.Equal(true, p.Attributes["flag"]);
        Assert.Equal(new object?[] { "a", "b" }, p.Attributes["tags"]);
        Assert.True(c.IsGenAi);
        Assert.False(p.IsGenAi);
        var ev = Assert.Single(c.Events);
        Assert.Equal(("exception", "Boom"), (ev.Name, ev.Attributes["exception.type"]));
        Assert.Equal((parent.TraceId.ToHexString(), "parent op", SpanStatusName.Error, 2), (summary.TraceId, summary.Name, summary.Status, summary.SpanCount));
    }

    [Fact]
    public async Task Logs_FromTheRealOtlpExporter_CarryScopeExecutionIdTraceAndAttributes()
    {
        await using var receiver = await TestReceiver.StartAsync();
        var service = "otlp-logs-" + Guid.NewGuid().ToString("N");
        var category = "OtlpTest." + Guid.NewGuid().ToString("N");
        using var activity = new Activity("logs test").Start();

        // Disposing the factory flushes the batch processor.
        using (var factory = LoggerFactory.Create(logging =>
        {
            logging.SetMinimumLevel(LogLevel.Debug);
            logging.AddOpenTelemetry(o =>
            {
                o.IncludeScopes = true;
                o.IncludeFormattedMessage = true;
                o.ParseStateValues = true;
                o.SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(service));
            });
            logging.Services.ConfigureOpenTelemetryLoggerProvider(logs => logs.AddOtlpExporter(o => Otlp(o, receiver, "v1/logs")));
        }))
        {
            var logger = factory.CreateLogger(category);
            using (logger.BeginScope(new Dictionary<string, object> { ["agentlab.execution_id"] = "exec-logs" }))
                logger.LogWarning("Run {RunNumber} finished for {Who}", 7, "<script>");
            logger.LogDebug("Outside the scope");
        }
        var records = receiver.Store.QueryLogs(new LogQuery(Resource: service)).Records;

        Assert.Equal(2, records.Count);
        var warning = records.Single(r => r.Level == LogLevelName.Warning);
        Assert.Equal(("Run 7 finished for <script>", 13, category, "exec-logs"), (warning.Message, warning.SeverityNumber, warning.Category, warning.ExecutionId));
        Assert.Equal(7L, warning.Attributes["RunNumber"]);
        Assert.Equal("<script>", warning.Attributes["Who"]);
        Assert.Equal("exec-logs", warning.Attributes["agentlab.execution_id"]);
        Assert.Equal((activity.TraceId.ToHexString(), activity.SpanId.ToHexString()), (warning.TraceId, warning.SpanId));
        var debug = records.Single(r => r.Level == LogLevelName.Debug);
        Assert.Null(debug.ExecutionId);
        Assert.Equal([warning.Message], receiver.Store.QueryLogs(new LogQuery(ExecutionId: "exec-logs")).Records.Select(r => r.Message));
    }

    [Fact]
    public async Task Metrics_FromTheRealOtlpExporter_TwoFlushesGiveARateAndLatency()
    {
        await using var receiver = await TestReceiver.StartAsync();
        var service = "otlp-metrics-" + Guid.NewGuid().ToString("N");
        using var meter = new Meter("OtlpTest." + Guid.NewGuid().ToString("N"));
        var tokens = meter.CreateCounter<long>("agentlab.model.tokens", "{token}");
        var duration = meter.CreateHistogram("http.server.request.duration", "s", null, null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5] });
        using var provider = Sdk.CreateMeterProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(service))
            .AddMeter(meter.Name)
            .AddOtlpExporter((o, reader) =>
            {
                Otlp(o, receiver, "v1/metrics");
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 3_600_000; // only our flushes
            })
            .Build();

        tokens.Add(10, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
        duration.Record(0.05, new KeyValuePair<string, object?>("http.route", "/a"));
        Assert.True(provider.ForceFlush(10_000));
        await Task.Delay(50, Ct); // two exports at distinct times
        tokens.Add(30, new KeyValuePair<string, object?>("gen_ai.token.type", "output"));
        for (var i = 0; i < 3; i++)
            duration.Record(0.2, new KeyValuePair<string, object?>("http.route", "/a"));
        duration.Record(0.2, new KeyValuePair<string, object?>("http.route", "/b"));
        Assert.True(provider.ForceFlush(10_000));
        var view = receiver.Store.GetMetrics(service, TimeSpan.FromMinutes(15));
        ChartSeries Series(string chart, string name) => view.Charts.Single(c => c.Id == chart).Series.Single(s => s.Name == name);

        // Two points each: the first export counts from the SDK's start time, the second from the first export.
        var rates = Series("request_rate", service).Points;
        var tokenRates = Series("tokens_per_second", "output").Points;
        Assert.Equal((2, 2), (rates.Count, tokenRates.Count));
        var (rate, tokenRate) = (rates[1].Value, tokenRates[1].Value);
        // 4 requests and 30 tokens over (nearly: each instrument has its own export time) the same interval.
        Assert.True(rate > 0);
        Assert.InRange(tokenRate / rate, 30.0 / 4 * 0.98, 30.0 / 4 * 1.02);
        // Δbuckets: 4 in (0.1, 0.25]: p50 = 0.1 + 0.15 * 2/4, p95 = 0.1 + 0.15 * 3.8/4 (seconds → ms).
        // The first export: one request of 0.05 s in (0, 0.1]: p50 = 0.05 s.
        Assert.Equal([50.0, 175.0], Series("latency", service + " p50").Points.Select(p => Math.Round(p.Value, 6)));
        Assert.Equal(242.5, Series("latency", service + " p95").Points[1].Value, 6);
        var instruments = view.Instruments.ToDictionary(i => i.Name);
        Assert.Equal(("histogram", "s", 3), (instruments["http.server.request.duration"].Type, instruments["http.server.request.duration"].Unit,
            instruments["http.server.request.duration"].Points));
        Assert.Equal("sum", instruments["agentlab.model.tokens"].Type);
    }

    [Fact]
    public async Task Post_Json_Is415WithTheProtocolToSet()
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client();

        using var response = await http.PostAsync("v1/traces", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("unsupported_media_type", problem.GetProperty("code").GetString());
        Assert.Equal("send OTLP/HTTP protobuf: OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("v1/traces")]
    [InlineData("v1/logs")]
    [InlineData("v1/metrics")]
    public async Task Post_Garbage_Is400InvalidOtlp(string path)
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client();

        using var response = await http.PostAsync(path, Protobuf([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), Ct).WaitAsync(Bound, Ct);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_otlp", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Post_GzipBody_IsDecodedAndAnsweredWithAnEmptyProtobuf()
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client();
        var request = OtlpFake.Logs("gzip-svc", OtlpFake.Log(9, "compressed"));
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            request.WriteTo(gzip);
        var content = Protobuf(compressed.ToArray());
        content.Headers.ContentEncoding.Add("gzip");

        using var response = await http.PostAsync("v1/logs", content, Ct).WaitAsync(Bound, Ct);
        var body = await response.Content.ReadAsByteArrayAsync(Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-protobuf", response.Content.Headers.ContentType?.MediaType);
        Assert.Empty(body);
        Assert.Equal("compressed", receiver.Store.QueryLogs(new LogQuery(Resource: "gzip-svc")).Records.Single().Message);
    }

    [Fact]
    public async Task Post_BodyOver32MiB_Is413()
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client();
        // 33 MiB of zeros gzip to ~33 KB: the bound holds on what the body expands to, not only on what is sent.
        using var compressed = new MemoryStream();
        await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write(new byte[33 * 1024 * 1024]);
        var content = Protobuf(compressed.ToArray());
        content.Headers.ContentEncoding.Add("gzip");

        using var response = await http.PostAsync("v1/traces", content, Ct).WaitAsync(Bound, Ct);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("payload_too_large", problem.GetProperty("code").GetString());
        Assert.Equal(0, receiver.Store.SpanCount);
    }

    [Theory]
    [InlineData(null, "no x-otlp-api-key header")]
    [InlineData("someone-elses-key-0123456789", "is not this AppHost's")]
    public async Task Post_WithoutTheApiKey_Is401AndNothingIsStored(string? apiKey, string title)
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client(apiKey);

        using var response = await http.PostAsync("v1/logs", Protobuf(OtlpFake.Logs("forger", OtlpFake.Log(17, "fake alarm")).ToByteArray()), Ct)
            .WaitAsync(Bound, Ct);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("otlp_api_key_required", problem.GetProperty("code").GetString());
        Assert.Contains(title, problem.GetProperty("title").GetString(), StringComparison.Ordinal);
        Assert.Contains("Dashboard:OtlpApiKey", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, receiver.Store.LogCount);
    }

    [Fact]
    public async Task UnknownPath_Is404()
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var http = receiver.Client();

        using var response = await http.PostAsync("v1/profiles", Protobuf([]), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Receiver_RequestWithATraceparent_IsNotSeenByAspNetCoreListeners()
    {
        await using var receiver = await TestReceiver.StartAsync();
        using var seen = new AspNetCoreSpans();
        var traceId = ActivityTraceId.CreateRandom();

        using var response = await seen.PostAsync(new Uri(receiver.Url, "v1/traces"), traceId);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(seen.WithTrace(traceId));
    }

    [Fact]
    public async Task PlainHost_RequestWithATraceparent_IsSeenByAspNetCoreListeners()
    {
        // The control for the test above: without DashboardHosting, the same listener sees the request.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var app = builder.Build();
        app.MapPost("/v1/traces", () => Results.Ok());
        await app.StartAsync(Ct).WaitAsync(Bound, Ct);
        var url = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First() + "/v1/traces");
        using var seen = new AspNetCoreSpans();
        var traceId = ActivityTraceId.CreateRandom();

        using var response = await seen.PostAsync(url, traceId);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEmpty(seen.WithTrace(traceId));
    }

    private static ByteArrayContent Protobuf(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        return content;
    }

    /// <summary>Listens to "Microsoft.AspNetCore" as a service's tracer provider in this process would.</summary>
    private sealed class AspNetCoreSpans : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly System.Collections.Concurrent.ConcurrentQueue<Activity> _started = new();

        public AspNetCoreSpans()
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name == "Microsoft.AspNetCore",
                Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStarted = _started.Enqueue,
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public IEnumerable<Activity> WithTrace(ActivityTraceId traceId) => _started.Where(a => a.TraceId == traceId);

        /// <summary>An empty OTLP export carrying our own traceparent (the client adds none: other tests may listen to HttpClient).</summary>
        public async Task<HttpResponseMessage> PostAsync(Uri url, ActivityTraceId traceId)
        {
            using var http = new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null });
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = Protobuf([]) };
            request.Headers.Add(OtlpReceiver.ApiKeyHeader, TestReceiver.ApiKey);
            request.Headers.Add("traceparent", $"00-{traceId.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
            return await http.SendAsync(request, Ct).WaitAsync(Bound, Ct);
        }

        public void Dispose() => _listener.Dispose();
    }
}
