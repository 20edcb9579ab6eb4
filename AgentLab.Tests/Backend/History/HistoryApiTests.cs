using System.Net;
using System.Text.Json;
using AgentLab.Backend.Data;
using static AgentLab.Tests.Backend.History.ExecutionRows;

namespace AgentLab.Tests.Backend.History;

/// <summary><c>GET /api/v1/history</c> on a real PostgreSQL database of its own.</summary>
public sealed class HistoryApiTests : BackendTestBase
{
    [Fact]
    public async Task History_EmptyDatabase_EmptyPageWithoutCursor()
    {
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/history");

        Assert.Empty(body.GetProperty("items").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("next_cursor").ValueKind);
        Assert.Equal(20, body.GetProperty("limit").GetInt32());
    }

    [Fact]
    public async Task History_Rows_NewestFirstAsSummariesWithoutPromptOrOutput()
    {
        var failed = Row(ExecutionStatus.Failed, Day.AddHours(2), model: "llama3.1:8b", durationMs: 250.5, ttftMs: null, errorCode: "model_error");
        var completed = Row(ExecutionStatus.Completed, Day.AddHours(1), type: "orchestrator", durationMs: 1234.5, ttftMs: 56.25,
            promptTokens: 11, completionTokens: 7, tokensPerSecond: 70);
        var running = Row(ExecutionStatus.Running, Day.AddHours(3));
        await InsertAsync(Database, [completed, failed, running], Ct);
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/history");

        var items = body.GetProperty("items").EnumerateArray().ToList();
        Assert.Equal([running.Id, failed.Id, completed.Id], items.Select(i => i.GetProperty("execution_id").GetGuid()));
        var c = items[2];
        Assert.Equal("completed", c.GetProperty("status").GetString());
        Assert.Equal("orchestrator", c.GetProperty("execution_type").GetString());
        Assert.Equal("mistral:7b", c.GetProperty("model").GetString());
        Assert.Equal("simulator", c.GetProperty("model_server").GetString());
        Assert.Equal(completed.CreatedAt, c.GetProperty("created_at").GetDateTimeOffset());
        Assert.Equal(completed.StartedAt, c.GetProperty("started_at").GetDateTimeOffset());
        Assert.Equal(completed.CompletedAt, c.GetProperty("completed_at").GetDateTimeOffset());
        Assert.Equal(1234.5, c.GetProperty("duration_ms").GetDouble());
        Assert.Equal(56.25, c.GetProperty("time_to_first_token_ms").GetDouble());
        Assert.Equal(11, c.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(7, c.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(70, c.GetProperty("tokens_per_second").GetDouble());
        Assert.Equal(1, c.GetProperty("attempt").GetInt32());
        Assert.Equal(JsonValueKind.Null, c.GetProperty("error").ValueKind);
        Assert.Equal($"/api/v1/executions/{completed.Id}", c.GetProperty("links").GetProperty("self").GetString());

        var error = items[1].GetProperty("error");
        Assert.Equal("model_error", error.GetProperty("code").GetString());
        Assert.Equal("it went wrong", error.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, items[0].GetProperty("completed_at").ValueKind);

        var text = body.GetRawText();
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
        Assert.False(c.TryGetProperty("output", out _));
        Assert.False(c.TryGetProperty("prompt", out _));
        Assert.False(c.TryGetProperty("request", out _));
    }

    [Fact]
    public async Task History_PagingThroughAllRows_EveryRowOnceInOrder()
    {
        // Five rows share one created_at: only the id tells them apart, and a page boundary falls among them.
        var rows = Enumerable.Range(0, 6).Select(i => Row(ExecutionStatus.Completed, Day.AddMinutes(i)))
            .Concat(Enumerable.Range(0, 5).Select(_ => Row(ExecutionStatus.Completed, Day.AddMinutes(3).AddTicks(10))))
            .ToList();
        await InsertAsync(Database, rows, Ct);
        var client = Backend();

        var seen = await ReadAllPagesAsync(client, "/api/v1/history?limit=3");

        var expected = rows.OrderByDescending(r => r.CreatedAt).ThenByDescending(r => r.Id.ToString("N"), StringComparer.Ordinal)
            .Select(r => r.Id).ToList();
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task History_PagingWithSeveralStatuses_EveryMatchingRowOnceInOrder()
    {
        string[] statuses = [ExecutionStatus.Completed, ExecutionStatus.Failed, ExecutionStatus.TimedOut, ExecutionStatus.Cancelled, ExecutionStatus.Running];
        var rows = Enumerable.Range(0, 30).Select(i => Row(statuses[i % statuses.Length], Day.AddSeconds(i / 2))).ToList();
        await InsertAsync(Database, rows, Ct);
        var client = Backend();

        var seen = await ReadAllPagesAsync(client, "/api/v1/history?status=failed,timed_out&status=running&limit=4");

        var expected = rows.Where(r => r.Status is ExecutionStatus.Failed or ExecutionStatus.TimedOut or ExecutionStatus.Running)
            .OrderByDescending(r => r.CreatedAt).ThenByDescending(r => r.Id.ToString("N"), StringComparer.Ordinal)
            .Select(r => r.Id).ToList();
        Assert.Equal(18, expected.Count);
        Assert.Equal(expected, seen);
    }

    [Theory]
    [InlineData("status=failed", new[] { "f1" })]
    [InlineData("status=COMPLETED,cancelled", new[] { "x1", "o1", "c2" })]
    [InlineData("execution_type=orchestrator", new[] { "o1" })]
    [InlineData("model=llama3.1:8b", new[] { "c2" })]
    [InlineData("model=LLAMA3.1:8B", new string[0])]
    [InlineData("from=2026-11-21T02:00:00Z", new[] { "x1", "o1", "c2" })]
    [InlineData("to=2026-11-21T02:00:00Z", new[] { "f1", "r1" })]
    [InlineData("from=2026-11-21T03:00:00%2B01:00&to=2026-11-21T03:00:00Z", new[] { "o1", "c2" })]
    [InlineData("from=2026-11-21T03:00:00 01:00&to=2026-11-21T04:00:00Z", new[] { "o1", "c2" })]
    [InlineData("status=completed&model=llama3.1:8b&from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z", new[] { "c2" })]
    public async Task History_Filter_OnlyMatchingRows(string query, string[] expected)
    {
        var rows = new Dictionary<string, ExecutionRecord>
        {
            ["r1"] = Row(ExecutionStatus.Running, Day.AddHours(0)),
            ["f1"] = Row(ExecutionStatus.Failed, Day.AddHours(1)),
            ["c2"] = Row(ExecutionStatus.Completed, Day.AddHours(2), model: "llama3.1:8b"),
            ["o1"] = Row(ExecutionStatus.Completed, Day.AddHours(2).AddMinutes(30), type: "orchestrator"),
            ["x1"] = Row(ExecutionStatus.Cancelled, Day.AddHours(4)),
        };
        await InsertAsync(Database, rows.Values, Ct);
        var client = Backend();

        var body = await GetOkAsync(client, "/api/v1/history?" + query);

        var names = body.GetProperty("items").EnumerateArray()
            .Select(i => rows.Single(r => r.Value.Id == i.GetProperty("execution_id").GetGuid()).Key);
        Assert.Equal(expected, names);
    }

    [Fact]
    public async Task History_InvalidFilters_ValidationFailedNamingEachField()
    {
        var client = Backend();

        var response = await client.GetAsync(
            "/api/v1/history?status=done&execution_type=graph&from=yesterday&to=2026-11-21T10:00:00&limit=0", Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 400, "validation_failed");
        var errors = body.GetProperty("errors");
        Assert.Equal(["execution_type", "from", "limit", "status", "to"], errors.EnumerateObject().Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Contains("queued, running, completed, failed, cancelled, timed_out", errors.GetProperty("status")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("offset", errors.GetProperty("to")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task History_FromAfterTo_ValidationFailedOnTo()
    {
        var client = Backend();

        var response = await client.GetAsync("/api/v1/history?from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 400, "validation_failed");
        Assert.Equal(["to"], body.GetProperty("errors").EnumerateObject().Select(e => e.Name));
    }

    [Theory]
    [InlineData("1", 200)]
    [InlineData("100", 200)]
    [InlineData("0", 400)]
    [InlineData("101", 400)]
    [InlineData("-5", 400)]
    [InlineData("ten", 400)]
    [InlineData("2.5", 400)]
    public async Task History_Limit_AcceptedFromOneToHundred(string limit, int status)
    {
        await InsertAsync(Database, Enumerable.Range(0, 3).Select(i => Row(ExecutionStatus.Completed, Day.AddMinutes(i))), Ct);
        var client = Backend();

        var response = await client.GetAsync($"/api/v1/history?limit={limit}", Ct).WaitAsync(Bound, Ct);

        if (status == 200)
        {
            var body = await JsonAsync(response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(int.Parse(limit, System.Globalization.CultureInfo.InvariantCulture), body.GetProperty("limit").GetInt32());
            Assert.Equal(Math.Min(3, int.Parse(limit, System.Globalization.CultureInfo.InvariantCulture)), body.GetProperty("items").GetArrayLength());
        }
        else
        {
            var body = await AssertProblemAsync(response, 400, "validation_failed");
            Assert.Equal(["limit"], body.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        }
    }

    [Fact]
    public async Task History_TamperedCursor_InvalidCursor()
    {
        await InsertAsync(Database, Enumerable.Range(0, 3).Select(i => Row(ExecutionStatus.Completed, Day.AddMinutes(i))), Ct);
        var client = Backend();
        var cursor = (await GetOkAsync(client, "/api/v1/history?limit=1")).GetProperty("next_cursor").GetString()!;
        var tampered = cursor[..10] + (cursor[10] == 'A' ? 'B' : 'A') + cursor[11..];

        var response = await client.GetAsync($"/api/v1/history?limit=1&cursor={tampered}", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(response, 400, "invalid_cursor");
    }

    [Theory]
    [InlineData("not-a-cursor")]
    [InlineData("AAAA")]
    [InlineData("%F0%9F%98%80")]
    public async Task History_UndecodableCursor_InvalidCursor(string cursor)
    {
        var client = Backend();

        var response = await client.GetAsync($"/api/v1/history?cursor={cursor}", Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 400, "invalid_cursor");
        Assert.Contains("next_cursor", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static async Task<JsonElement> GetOkAsync(HttpClient client, string path)
    {
        var response = await client.GetAsync(path, Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {body}");
        return body;
    }

    private static async Task<List<Guid>> ReadAllPagesAsync(HttpClient client, string firstPage)
    {
        var seen = new List<Guid>();
        string? cursor = null;
        for (var pages = 0; pages < 100; pages++)
        {
            var body = await GetOkAsync(client, cursor is null ? firstPage : $"{firstPage}&cursor={cursor}");
            seen.AddRange(body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("execution_id").GetGuid()));
            cursor = body.GetProperty("next_cursor").GetString();
            if (cursor is null)
                return seen;
        }
        throw new InvalidOperationException("The history never reached its last page.");
    }
}
