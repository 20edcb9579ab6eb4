using System.Net;
using System.Text.Json;
using AgentLab.Backend.Data;
using static AgentLab.Tests.Backend.History.ExecutionRows;

namespace AgentLab.Tests.Backend.History;

/// <summary><c>GET /api/v1/metrics</c> on a real PostgreSQL database of its own, on data small enough to check by hand.</summary>
public sealed class MetricsApiTests : BackendTestBase
{
    [Fact]
    public async Task Metrics_EmptyDatabase_ZerosAndNulls()
    {
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/metrics");

        var totals = body.GetProperty("totals");
        Assert.Equal(0, totals.GetProperty("count").GetInt64());
        Assert.Equal(0, totals.GetProperty("completed").GetInt64());
        Assert.Equal(0, totals.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(JsonValueKind.Null, totals.GetProperty("error_rate").ValueKind);
        Assert.Equal(JsonValueKind.Null, totals.GetProperty("tokens_per_second").ValueKind);
        Assert.Equal(JsonValueKind.Null, totals.GetProperty("duration_ms").GetProperty("p50").ValueKind);
        Assert.Equal(JsonValueKind.Null, totals.GetProperty("time_to_first_token_ms").GetProperty("p99").ValueKind);
        Assert.Equal(["simple", "orchestrator"], body.GetProperty("by_type").EnumerateArray().Select(t => t.GetProperty("execution_type").GetString()));
        Assert.Equal(ExecutionStatus.All, body.GetProperty("by_status").EnumerateArray().Select(t => t.GetProperty("status").GetString()));
        Assert.All(body.GetProperty("by_status").EnumerateArray(), s => Assert.Equal(0, s.GetProperty("count").GetInt64()));
        Assert.Empty(body.GetProperty("by_model").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("window").GetProperty("from").ValueKind);
        Assert.True(body.GetProperty("generated_at").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public async Task Metrics_KnownRows_CountsErrorRateTokensAndPercentiles()
    {
        await InsertAsync(Database, KnownRows(), Ct);
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/metrics");

        var totals = body.GetProperty("totals");
        Assert.Equal(11, totals.GetProperty("count").GetInt64());
        Assert.Equal(7, totals.GetProperty("completed").GetInt64());
        Assert.Equal(2, totals.GetProperty("failed").GetInt64());                  // failed + timed_out
        Assert.Equal(1, totals.GetProperty("cancelled").GetInt64());
        Assert.Equal(2.0 / 10, totals.GetProperty("error_rate").GetDouble(), 9);   // over the 10 finished ones
        Assert.Equal(7 * 10 + 3 + 4 + 6, totals.GetProperty("prompt_tokens").GetInt64());
        Assert.Equal(5 * 20 + 100 + 1, totals.GetProperty("completion_tokens").GetInt64());
        // 200 tokens generated in 5 × 0.5 s + 10 s: neither the completed run without a rate nor the timed-out one counts.
        Assert.Equal(200 / 12.5, totals.GetProperty("tokens_per_second").GetDouble(), 2);
        // Ten durations 50, 100..600, 1000, 2000, 3000: percentile_cont's median is halfway between 400 and 500. Each
        // value is alone in its histogram bin, and so known exactly.
        Assert.Equal(450, totals.GetProperty("duration_ms").GetProperty("p50").GetDouble(), 6);

        var simple = body.GetProperty("by_type")[0];
        Assert.Equal("simple", simple.GetProperty("execution_type").GetString());
        Assert.Equal(9, simple.GetProperty("count").GetInt64());
        Assert.Equal(1.0 / 8, simple.GetProperty("error_rate").GetDouble(), 9);

        // Seven completed: 100..600 and 1000 ms. p50 is the 4th (400 ms); p99 is 94 % of the way from 600 to 1000.
        var completed = body.GetProperty("by_status").EnumerateArray().Single(s => s.GetProperty("status").GetString() == "completed");
        Assert.Equal(7, completed.GetProperty("count").GetInt64());
        Assert.Equal(400, completed.GetProperty("duration_ms").GetProperty("p50").GetDouble(), 6);
        Assert.Equal(600 + 0.94 * 400, completed.GetProperty("duration_ms").GetProperty("p99").GetDouble(), 6);
        Assert.Equal(40, completed.GetProperty("time_to_first_token_ms").GetProperty("p50").GetDouble(), 6);
        var running = body.GetProperty("by_status").EnumerateArray().Single(s => s.GetProperty("status").GetString() == "running");
        Assert.Equal(1, running.GetProperty("count").GetInt64());
        Assert.Equal(JsonValueKind.Null, running.GetProperty("duration_ms").GetProperty("p50").ValueKind);
        Assert.Equal(JsonValueKind.Null, running.GetProperty("error_rate").ValueKind);

        var models = body.GetProperty("by_model").EnumerateArray().ToList();
        Assert.Equal(["mistral:7b", "llama3.1:8b", null], models.Select(m => m.GetProperty("model").GetString()));
        Assert.Equal([8L, 2L, 1L], models.Select(m => m.GetProperty("count").GetInt64()));
    }

    [Fact]
    public async Task Metrics_WindowWithinOneDay_SameFiguresFromRawRowsAsFromTheRollup()
    {
        // All-time reads whole days from the rollup; a window of a few hours has no whole day and reads raw rows.
        await InsertAsync(Database, KnownRows(), Ct);
        var client = Backend();

        var rollup = await GetOkAsync(client, "/api/v1/metrics");
        var raw = await GetOkAsync(client, "/api/v1/metrics?from=2026-11-21T00:30:00Z&to=2026-11-21T23:00:00Z");

        Assert.Equal(11, raw.GetProperty("totals").GetProperty("count").GetInt64());
        foreach (var part in new[] { "totals", "by_type", "by_model", "by_status" })
            Assert.Equal(rollup.GetProperty(part).GetRawText(), raw.GetProperty(part).GetRawText());
    }

    [Fact]
    public async Task Metrics_Window_CountsRowsCreatedInFromInclusiveToExclusive()
    {
        var rows = new[]
        {
            Row(ExecutionStatus.Completed, Day.AddHours(-2)),                       // before the window
            Row(ExecutionStatus.Completed, Day.AddHours(-1)),                       // first instant of the window: in
            Row(ExecutionStatus.Failed, Day.AddHours(12)),                          // the whole day inside: rollup
            Row(ExecutionStatus.Running, Day.AddHours(13)),                         // unfinished, inside the whole day
            Row(ExecutionStatus.Completed, Day.AddDays(1).AddHours(1)),              // after the whole day, before 'to'
            Row(ExecutionStatus.Completed, Day.AddDays(1).AddHours(2)),              // at 'to': out
            Row(ExecutionStatus.Queued, Day.AddDays(1).AddHours(3)),                // after the window
        };
        await InsertAsync(Database, rows, Ct);
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/metrics?from=2026-11-20T23:00:00Z&to=2026-11-22T03:00:00%2B01:00");

        var totals = body.GetProperty("totals");
        Assert.Equal(4, totals.GetProperty("count").GetInt64());
        Assert.Equal(2, totals.GetProperty("completed").GetInt64());
        Assert.Equal(1, totals.GetProperty("failed").GetInt64());
        Assert.Equal(1.0 / 3, totals.GetProperty("error_rate").GetDouble(), 9);
        Assert.Equal(new DateTimeOffset(2026, 11, 20, 23, 0, 0, TimeSpan.Zero), body.GetProperty("window").GetProperty("from").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(2026, 11, 22, 2, 0, 0, TimeSpan.Zero), body.GetProperty("window").GetProperty("to").GetDateTimeOffset());
    }

    [Theory]
    [InlineData("from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", "to")]
    [InlineData("from=last-week", "from")]
    [InlineData("to=2026-11-21", "to")]
    public async Task Metrics_InvalidWindow_ValidationFailedNamingTheField(string query, string field)
    {
        var client = Backend();

        var response = await client.GetAsync("/api/v1/metrics?" + query, Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 400, "validation_failed");
        Assert.Equal([field], body.GetProperty("errors").EnumerateObject().Select(e => e.Name));
    }

    /// <summary>
    /// 11 executions on 2026-11-21: 7 completed (5 simple ones with a rate, 1 simple one without, 1 orchestrator), 1
    /// failed, 1 timed out, 1 cancelled before a model was known, 1 running.
    /// </summary>
    private static IEnumerable<ExecutionRecord> KnownRows()
    {
        for (var i = 1; i <= 5; i++)
        {
            yield return Row(ExecutionStatus.Completed, Day.AddHours(i), durationMs: 100 * i, ttftMs: 10 * i,
                promptTokens: 10, completionTokens: 20, tokensPerSecond: 40);
        }
        yield return Row(ExecutionStatus.Completed, Day.AddHours(6), durationMs: 600, ttftMs: 60, promptTokens: 10, completionTokens: 0, tokensPerSecond: null);
        yield return Row(ExecutionStatus.Completed, Day.AddHours(7), type: "orchestrator", model: "llama3.1:8b", durationMs: 1000, ttftMs: 100,
            promptTokens: 10, completionTokens: 100, tokensPerSecond: 10);
        yield return Row(ExecutionStatus.Failed, Day.AddHours(8), durationMs: 50, ttftMs: null, promptTokens: 3, completionTokens: null, tokensPerSecond: null);
        yield return Row(ExecutionStatus.TimedOut, Day.AddHours(9), type: "orchestrator", model: "llama3.1:8b", durationMs: 2000, ttftMs: 500,
            promptTokens: 4, completionTokens: 1, tokensPerSecond: 0.5);
        yield return Row(ExecutionStatus.Cancelled, Day.AddHours(10), model: null, durationMs: 3000, ttftMs: null, promptTokens: 6, completionTokens: null, tokensPerSecond: null);
        yield return Row(ExecutionStatus.Running, Day.AddHours(11));
    }

    private static async Task<JsonElement> GetOkAsync(HttpClient client, string path)
    {
        var response = await client.GetAsync(path, Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {body}");
        return body;
    }
}
