using System.Collections.Concurrent;
using System.Diagnostics;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class TelemetryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static ActivityListener Listen(ConcurrentQueue<Activity> stopped)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private static HttpRequestMessage Traced(string path, out string traceId)
    {
        traceId = ActivityTraceId.CreateRandom().ToHexString();
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
        return request;
    }

    private static async Task<Activity> ServerSpanAsync(ConcurrentQueue<Activity> stopped, string traceId, CancellationToken ct)
    {
        // The server span stops just after the response is sent: wait for it, bounded.
        while (true)
        {
            if (stopped.FirstOrDefault(a => a.TraceId.ToHexString() == traceId && a.Kind == ActivityKind.Server) is { } span)
                return span;
            await Task.Delay(10, ct);
        }
    }

    [Fact]
    public void BackgroundStatementFilter_ParentlessStatement_IsNotExportedButOneInsideARequestIs()
    {
        // An ActivitySource of Npgsql's name, listened to here only, stands in for the driver.
        using var npgsql = new ActivitySource(BackgroundStatementFilter.DatabaseSource);
        using var server = new ActivitySource("TelemetryTests.Server." + Guid.NewGuid());
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => ReferenceEquals(s, npgsql) || ReferenceEquals(s, server),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var filter = new BackgroundStatementFilter();
        var previous = Activity.Current;
        Activity.Current = null;

        var poll = npgsql.StartActivity("postgresql", ActivityKind.Client)!;
        poll.Stop();
        filter.OnEnd(poll);
        var request = server.StartActivity("GET /api/v1/executions/{id}", ActivityKind.Server)!;
        var statement = npgsql.StartActivity("postgresql", ActivityKind.Client)!;
        statement.Stop();
        filter.OnEnd(statement);
        request.Stop();
        filter.OnEnd(request);
        Activity.Current = previous;

        Assert.False(poll.Recorded);
        Assert.True(statement.Recorded);
        Assert.True(request.Recorded);
    }

    [Fact]
    public async Task ServerSpan_HandlerThrows_NamedByRouteAndMarkedError()
    {
        var ct = TestContext.Current.CancellationToken;
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = Listen(stopped);
        await using var host = await TestHost.StartAsync(app => app.MapGet("/items/{id}", string (int id) => throw new InvalidOperationException("boom")));
        using var client = host.CreateClient();

        using var response = await client.SendAsync(Traced("/items/7", out var traceId), ct).WaitAsync(Timeout, ct);
        var span = await ServerSpanAsync(stopped, traceId, ct).WaitAsync(Timeout, ct);

        Assert.Equal("GET /items/{id}", span.DisplayName);
        Assert.Equal("/items/{id}", span.GetTagItem("http.route"));
        Assert.Equal(500, span.GetTagItem("http.response.status_code"));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal(typeof(InvalidOperationException).FullName, span.GetTagItem("error.type"));
    }

    [Fact]
    public async Task ServerSpan_Probe_IsNotRecorded()
    {
        var ct = TestContext.Current.CancellationToken;
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = Listen(stopped);
        await using var host = await TestHost.StartAsync(_ => { });
        using var client = host.CreateClient();

        using var response = await client.SendAsync(Traced("/alive", out var traceId), ct).WaitAsync(Timeout, ct);
        var span = await ServerSpanAsync(stopped, traceId, ct).WaitAsync(Timeout, ct);

        Assert.False(span.Recorded);
    }

    [Fact]
    public async Task Otlp_EndpointConfigured_ExportsTracesAndLogsOnSignalPaths()
    {
        var ct = TestContext.Current.CancellationToken;
        var received = new ConcurrentQueue<(string Path, string? ContentType)>();
        await using var collector = await TestHost.StartAsync(app => app.MapPost("/{**path}", (HttpRequest r) =>
        {
            received.Enqueue((r.Path.Value!, r.ContentType));
            return Results.Ok();
        }), defaults: false);
        var host = await TestHost.StartAsync(
            app => app.MapGet("/hello", (ILogger<TelemetryTests> log) =>
            {
                log.LogInformation("hello handled");
                return "hi";
            }),
            config: new() { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Address.ToString(), ["OTEL_SERVICE_NAME"] = "otlp-test" });
        using (var client = host.CreateClient())
            await client.GetStringAsync("/hello", ct).WaitAsync(Timeout, ct);

        await host.DisposeAsync(); // disposing the container flushes the providers

        Assert.Contains(received, r => r.Path == "/v1/traces" && r.ContentType == "application/x-protobuf");
        Assert.Contains(received, r => r.Path == "/v1/logs" && r.ContentType == "application/x-protobuf");
    }
}
