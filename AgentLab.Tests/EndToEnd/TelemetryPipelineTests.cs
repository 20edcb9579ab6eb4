using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Testing;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// The services' real OTLP exports, through the AppHost's receiver, into the dashboard's store and API: what the
/// dashboard shows for one execution is what the Backend and LabService processes sent.
/// </summary>
public sealed class TelemetryPipelineTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Execution_ThroughTheLab_IsOneConnectedTraceWithLogsOfBothServicesAndRates()
    {
        await using var lab = await AgentLabTestHost.StartAsync(
            new Dictionary<string, string?> { ["Dashboard:MetricExportIntervalMilliseconds"] = "1000" }, Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        var dashboard = lab.App.Dashboard!;
        using var backend = lab.CreateBackendClient();

        var executionId = await ExecuteAsync(backend);
        await ExecutionPolling.PollAsync(backend, executionId, e => e.GetProperty("status").GetString() == "completed", Bound);
        var trace = await PollAsync(() => ConnectedTrace(dashboard.Telemetry, executionId), "one connected trace of the execution");
        var logs = await PollAsync(() =>
        {
            var records = dashboard.Telemetry.QueryLogs(new LogQuery(ExecutionId: executionId, Limit: 1000)).Records;
            return records.Any(r => r.Resource == "backend") && records.Any(r => r.Resource == "labservice") ? records : null;
        }, "logs of the execution from both services", () => Describe(dashboard.Telemetry, executionId));
        for (var i = 0; i < 3; i++)
        {
            using var history = await backend.GetAsync("/api/v1/history", Ct).WaitAsync(Bound, Ct);
            Assert.Equal(HttpStatusCode.OK, history.StatusCode);
        }
        var rate = await PollAsync(() =>
        {
            var chart = dashboard.Telemetry.GetMetrics("backend", TimeSpan.FromMinutes(15)).Charts.Single(c => c.Id == "request_rate");
            return chart.Series.SingleOrDefault(s => s.Resource == "backend") is { } series && series.Points.Any(p => p.Value > 0) ? series : null;
        }, "a request rate of the backend");
        // One model call is enough for a tokens/s point: its series is new since LabService's previous export.
        var tokens = await PollAsync(() => dashboard.Telemetry.GetMetrics("labservice", TimeSpan.FromMinutes(15)).Charts
            .Single(c => c.Id == "tokens_per_second").Series.SingleOrDefault(s => s.Name == "output" && s.Points.Any(p => p.Value > 0)),
            "an output tokens/s point of labservice");
        using var api = new HttpClient { BaseAddress = dashboard.Url };
        using var listed = await api.GetAsync($"api/traces?execution_id={executionId}", Ct).WaitAsync(Bound, Ct);
        var summaries = JsonDocument.Parse(await listed.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("traces");

        Assert.Contains(trace.Spans, s => s.Resource == "backend");
        Assert.Contains(trace.Spans, s => s.Resource == "labservice");
        Assert.Contains(trace.Spans, s => s.IsGenAi && s.Attributes.ContainsKey("gen_ai.request.model"));
        Assert.Equal(0, trace.Spans[0].Depth);
        Assert.Single(trace.Spans, s => s.Depth == 0);
        Assert.All(logs, r => Assert.Equal(executionId, r.ExecutionId));
        Assert.Contains(rate.Points, p => p.Value > 0);
        Assert.Equal("labservice", tokens.Resource);
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        Assert.Contains(summaries.EnumerateArray(), t => t.GetProperty("trace_id").GetString() == trace.TraceId);
    }

    /// <summary>The execution's trace once it holds both services and the model call, every span's parent received.</summary>
    private static TraceDetail? ConnectedTrace(TelemetryStore store, string executionId)
    {
        foreach (var summary in store.QueryTraces(new TraceQuery(ExecutionId: executionId)).Traces)
        {
            if (store.GetTrace(summary.TraceId) is not { } trace)
                continue;
            var ids = trace.Spans.Select(s => s.SpanId).ToHashSet();
            // The root may name a parent nobody exported (the test's HttpClient span, when something in this process listens).
            var tops = trace.Spans.Count(s => s.ParentSpanId is null || !ids.Contains(s.ParentSpanId));
            if (tops == 1
                && trace.Spans.Any(s => s.Resource == "backend")
                && trace.Spans.Any(s => s.Resource == "labservice")
                && trace.Spans.Any(s => s.Attributes.ContainsKey("gen_ai.request.model")))
                return trace;
        }
        return null;
    }

    private static async Task<string> ExecuteAsync(HttpClient backend)
    {
        using var response = await backend.PostAsync("/api/v1/execute",
            new StringContent("""{"prompt": "Dime 3 números primos", "model": "mistral7b"}""", Encoding.UTF8, "application/json"), Ct)
            .WaitAsync(Bound, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"execute answered {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("execution_id").GetString()!;
    }

    private static string Describe(TelemetryStore store, string executionId)
    {
        var all = store.QueryLogs(new LogQuery(Limit: 5000)).Records;
        var mentioning = all.Where(r => r.Message.Contains(executionId, StringComparison.Ordinal)
            || r.Attributes.Values.Any(v => v?.ToString()?.Contains(executionId, StringComparison.Ordinal) == true));
        return $"{all.Count} records ({string.Join(", ", all.GroupBy(r => r.Resource).Select(g => $"{g.Key}: {g.Count()}"))}); mentioning the execution: " +
            string.Join(" | ", mentioning.Select(r => $"{r.Resource} {r.Category} '{r.Message}' exec={r.ExecutionId} [{string.Join(", ", r.Attributes.Select(a => a.Key + "=" + a.Value))}]"));
    }

    private static async Task<T> PollAsync<T>(Func<T?> find, string what, Func<string>? describe = null) where T : class
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Bound)
        {
            if (find() is { } found)
                return found;
            await Task.Delay(200, Ct);
        }
        throw new TimeoutException($"Waited {Bound.TotalSeconds} s for {what}. {describe?.Invoke()}");
    }
}
