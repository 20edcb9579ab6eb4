using System.Net;
using System.Text.Json;
using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>The telemetry API over HTTP, as the dashboard's pages read it: snake_case JSON, the contract's shapes.</summary>
public sealed class TelemetryApiTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly TelemetryStore _store = new(new DashboardOptions());
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var builder = DashboardHosting.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton(_store);
        builder.Services.AddProblemDetails();
        _app = builder.Build();
        _app.MapTelemetryApi();
        await _app.StartAsync(Ct).WaitAsync(Bound, Ct);
        var address = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(string path)
    {
        using var response = await _http.GetAsync(path, Ct).WaitAsync(Bound, Ct);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement);
    }

    [Fact]
    public async Task Logs_Filtered_AreSnakeCaseNewestFirstWithCounters()
    {
        var log = OtlpFake.Log(13, "slow <script>", ("agentlab.execution_id", "exec-9"), ("ElapsedMs", 1200L));
        _store.Add(OtlpFake.Logs("backend", OtlpFake.Log(9, "fine"), log));
        _store.Add(OtlpFake.Logs("labservice", OtlpFake.Log(17, "lab error", ("agentlab.execution_id", "exec-9"))));

        var (status, body) = await GetAsync("/api/logs?resource=backend&level=warning&execution_id=exec-9&q=SCRIPT");

        Assert.Equal(HttpStatusCode.OK, status);
        var record = Assert.Single(body.GetProperty("records").EnumerateArray());
        Assert.Equal("warning", record.GetProperty("level").GetString());
        Assert.Equal(13, record.GetProperty("severity_number").GetInt32());
        Assert.Equal("slow <script>", record.GetProperty("message").GetString());
        Assert.Equal("exec-9", record.GetProperty("execution_id").GetString());
        Assert.Equal("Test.Category", record.GetProperty("category").GetString());
        Assert.Equal(1200, record.GetProperty("attributes").GetProperty("ElapsedMs").GetInt64());
        Assert.Equal("exec-9", record.GetProperty("attributes").GetProperty("agentlab.execution_id").GetString());
        Assert.False(record.TryGetProperty("trace_id", out _)); // null: left out
        Assert.True(record.GetProperty("id").GetInt64() > 0);
        Assert.Equal((3, 20_000, 0), (body.GetProperty("kept").GetInt32(), body.GetProperty("capacity").GetInt32(), body.GetProperty("dropped").GetInt32()));
    }

    [Theory]
    [InlineData("/api/logs?level=loud")]
    [InlineData("/api/logs?level=3")]
    [InlineData("/api/logs?limit=0")]
    [InlineData("/api/traces?limit=many")]
    [InlineData("/api/metrics?minutes=-5")]
    public async Task Query_Invalid_Is400InvalidQuery(string path)
    {
        var (status, body) = await GetAsync(path);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_query", body.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Traces_ListAndDetail_MatchTheContract()
    {
        var t = OtlpFake.TraceId(77);
        var root = OtlpFake.Span(t, OtlpFake.SpanId(1), null, "POST /api/v1/execute", 0, 0.5, ("agentlab.execution_id", "exec-7"));
        root.Kind = Span.Types.SpanKind.Server;
        var model = OtlpFake.Span(t, OtlpFake.SpanId(2), OtlpFake.SpanId(1), "chat mistral:7b", 0.1, 0.4,
            ("gen_ai.request.model", "mistral:7b"), ("gen_ai.usage.output_tokens", 12L), ("ratio", 0.5), ("ok", true), ("tags", new object[] { "a", 2L }));
        model.Kind = Span.Types.SpanKind.Client;
        model.Events.Add(new Span.Types.Event { Name = "exception", TimeUnixNano = OtlpFake.Now });
        _store.Add(OtlpFake.Spans("backend", root));
        _store.Add(OtlpFake.Spans("labservice", model));

        var (listStatus, list) = await GetAsync("/api/traces?execution_id=exec-7&resource=labservice");
        var (detailStatus, detail) = await GetAsync($"/api/traces/{t}");

        Assert.Equal(HttpStatusCode.OK, listStatus);
        var summary = Assert.Single(list.GetProperty("traces").EnumerateArray());
        Assert.Equal(t, summary.GetProperty("trace_id").GetString());
        Assert.Equal("POST /api/v1/execute", summary.GetProperty("name").GetString());
        Assert.Equal("backend", summary.GetProperty("resource").GetString());
        Assert.Equal(["backend", "labservice"], summary.GetProperty("resources").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(500, summary.GetProperty("duration_ms").GetDouble(), 6);
        Assert.Equal((2, 0, "ok"), (summary.GetProperty("span_count").GetInt32(), summary.GetProperty("error_count").GetInt32(), summary.GetProperty("status").GetString()));
        Assert.Equal(["exec-7"], summary.GetProperty("execution_ids").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(0, summary.GetProperty("execution_types").GetArrayLength());
        Assert.Equal(1, summary.GetProperty("model_calls").GetInt32());
        Assert.Equal(2, list.GetProperty("kept").GetInt32());

        Assert.Equal(HttpStatusCode.OK, detailStatus);
        var spans = detail.GetProperty("spans").EnumerateArray().ToList();
        Assert.Equal(["server", "client"], spans.Select(s => s.GetProperty("kind").GetString()));
        Assert.Equal([0, 1], spans.Select(s => s.GetProperty("depth").GetInt32()));
        var call = spans[1];
        Assert.Equal(OtlpFake.SpanId(1), call.GetProperty("parent_span_id").GetString());
        Assert.Equal(("labservice", "Test.Scope", "unset", true), (call.GetProperty("resource").GetString(), call.GetProperty("scope").GetString(),
            call.GetProperty("status").GetString(), call.GetProperty("is_gen_ai").GetBoolean()));
        Assert.Equal(100, call.GetProperty("offset_ms").GetDouble(), 6);
        Assert.Equal(300, call.GetProperty("duration_ms").GetDouble(), 6);
        var attributes = call.GetProperty("attributes");
        Assert.Equal("mistral:7b", attributes.GetProperty("gen_ai.request.model").GetString());
        Assert.Equal(12, attributes.GetProperty("gen_ai.usage.output_tokens").GetInt64());
        Assert.Equal(0.5, attributes.GetProperty("ratio").GetDouble());
        Assert.True(attributes.GetProperty("ok").GetBoolean());
        Assert.Equal("[\"a\",2]", attributes.GetProperty("tags").GetRawText());
        Assert.Equal("exception", call.GetProperty("events")[0].GetProperty("name").GetString());
        Assert.False(spans[0].TryGetProperty("parent_span_id", out _));
    }

    [Fact]
    public async Task Trace_Unknown_Is404TraceNotFound()
    {
        var (status, body) = await GetAsync($"/api/traces/{OtlpFake.TraceId(123456)}");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("trace_not_found", body.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Metrics_Empty_HasTheThreeChartsAndNoInstruments()
    {
        var (status, body) = await GetAsync("/api/metrics?minutes=5");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["request_rate", "latency", "tokens_per_second"], body.GetProperty("charts").EnumerateArray().Select(c => c.GetProperty("id").GetString()));
        Assert.Equal(["req/s", "ms", "tokens/s"], body.GetProperty("charts").EnumerateArray().Select(c => c.GetProperty("unit").GetString()));
        Assert.Empty(body.GetProperty("instruments").EnumerateArray());
    }

    [Fact]
    public async Task Metrics_WithPoints_SeriesCarryResourceNameAndPoints()
    {
        var start = OtlpFake.Now - OtlpFake.Seconds(60);
        _store.Add(OtlpFake.Metrics("backend",
            OtlpFake.Histogram("http.server.request.duration", start, OtlpFake.Now - OtlpFake.Seconds(20), [0.1], [1, 0])));
        _store.Add(OtlpFake.Metrics("backend",
            OtlpFake.Histogram("http.server.request.duration", start, OtlpFake.Now - OtlpFake.Seconds(10), [0.1], [11, 0])));

        // The whole day: OtlpFake.Now is fixed when the class first loads, minutes before this test may run.
        var (_, body) = await GetAsync("/api/metrics?resource=backend&minutes=1440");

        var rate = body.GetProperty("charts")[0].GetProperty("series")[0];
        Assert.Equal(("backend", "backend"), (rate.GetProperty("resource").GetString(), rate.GetProperty("name").GetString()));
        Assert.Equal([0.025, 1.0], rate.GetProperty("points").EnumerateArray().Select(p => Math.Round(p.GetProperty("value").GetDouble(), 6)));
        // The first point is the first export's (20 s before OtlpFake.Now), not the time of the query.
        var firstExport = DateTimeOffset.UnixEpoch.AddTicks((long)((OtlpFake.Now - OtlpFake.Seconds(20)) / 100));
        Assert.Equal(firstExport, rate.GetProperty("points")[0].GetProperty("time").GetDateTimeOffset(), TimeSpan.FromMilliseconds(1));
        var instrument = body.GetProperty("instruments")[0];
        Assert.Equal(("http.server.request.duration", "histogram", 2), (instrument.GetProperty("name").GetString(),
            instrument.GetProperty("type").GetString(), instrument.GetProperty("points").GetInt32()));
    }
}
