using System.Net;
using System.Net.ServerSentEvents;
using System.Text.Json;
using AgentLab.AppHost.Hosting;
using static AgentLab.Tests.AppHost.RunnerTestKit;
using static AgentLab.Tests.AppHost.Dashboard.DashboardWebKit;

namespace AgentLab.Tests.AppHost.Dashboard;

public sealed class DashboardWebConsoleTests
{
    private const string FiveLines = "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; sleep 300";

    [Fact]
    public void ResourceLog_Overwritten_KeepsNumbersAndReadsAfterASequence()
    {
        var log = new ResourceLog("r", capacity: 3);
        for (var i = 1; i <= 5; i++)
            log.Write($"l{i}");

        var all = log.After(0);
        var newer = log.After(4);
        var firstTwo = log.After(0, max: 2);

        Assert.Equal([3L, 4L, 5L], all.Select(l => l.Sequence));
        Assert.Equal(["l3", "l4", "l5"], all.Select(l => l.Text));
        Assert.Equal("l5", Assert.Single(newer).Text);
        Assert.Equal(["l3", "l4"], firstTwo.Select(l => l.Text));
        Assert.Empty(log.After(5));
        Assert.Equal(5, log.LastSequence);
    }

    [Fact]
    public async Task Console_LinesWritten_AppearInOrderWithSequenceNumbers()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh(FiveLines));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, "line5") && Texts(web.Resource, "oops"), "all output", ct);
        using var client = Client(app);

        var body = await GetJsonAsync(client, "api/resources/web/console", ct);

        Assert.Equal("web", body.GetProperty("resource").GetString());
        Assert.Equal(1000, body.GetProperty("capacity").GetInt32());
        var lines = body.GetProperty("lines").EnumerateArray().ToList();
        var texts = lines.Select(l => l.GetProperty("text").GetString()).Where(t => t!.StartsWith("line", StringComparison.Ordinal));
        Assert.Equal(["line1", "line2", "line3", "line4", "line5"], texts);
        var seqs = lines.Select(l => l.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, lines.Count).Select(i => (long)i), seqs);
        Assert.True(lines.Single(l => l.GetProperty("text").GetString() == "oops").GetProperty("is_error").GetBoolean());
        Assert.True(lines[0].TryGetProperty("time", out _));
    }

    [Theory]
    [InlineData("\u001b[31m    _________\u001b[0m", "    _________")]
    [InlineData("\u001b[0mGarnet 2.2.8 64 bit; standalone mode\u001b[31m", "Garnet 2.2.8 64 bit; standalone mode")]
    [InlineData("\u001b[1;35mhttps://aka.ms/GetGarnet\u001b[K", "https://aka.ms/GetGarnet")]
    [InlineData("\u001b]0;window title\u0007text", "text")]
    [InlineData("no escapes [brackets] stay", "no escapes [brackets] stay")]
    public void TerminalText_EscapeSequences_AreRemoved(string raw, string shown)
    {
        Assert.Equal(shown, AgentLab.AppHost.Dashboard.TerminalText.Plain(raw));
    }

    [Fact]
    public async Task Console_ColouredOutput_IsPlainTextAndSearchable()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh("printf '\\033[31mred\\033[0m alert\\n'; sleep 300"));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => web.Resource.Log.Snapshot().Any(l => l.Text.Contains("alert", StringComparison.Ordinal)), "the coloured line", ct);
        using var client = Client(app);

        var found = await GetJsonAsync(client, "api/resources/web/console?q=red%20alert", ct);

        Assert.Equal("red alert", Assert.Single(found.GetProperty("lines").EnumerateArray()).GetProperty("text").GetString());
        Assert.Contains(web.Resource.Log.Snapshot(), l => l.Text.Contains('\u001b', StringComparison.Ordinal)); // the terminal keeps its colours
    }

    [Fact]
    public async Task Console_AfterQueryAndLimit_Filter()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh("for i in 1 2 3 4 5; do echo line$i; done; sleep 300"));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, "line5"), "all output", ct);
        using var client = Client(app);

        var after = await TextsAsync(client, "api/resources/web/console?after=2", ct);
        var query = await TextsAsync(client, "api/resources/WEB/console?q=LINE4", ct);
        var limit = await TextsAsync(client, "api/resources/web/console?limit=2", ct);
        using var badLimit = await client.GetAsync("api/resources/web/console?limit=0", ct).WaitAsync(Bound, ct);
        using var unknown = await client.GetAsync("api/resources/nope/console", ct).WaitAsync(Bound, ct);

        Assert.Equal(["line3", "line4", "line5"], after);
        Assert.Equal(["line4"], query);
        Assert.Equal(["line4", "line5"], limit);
        Assert.Equal(HttpStatusCode.BadRequest, badLimit.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Stream_LineWrittenAfterConnecting_IsDelivered()
    {
        var ct = TestContext.Current.CancellationToken;
        var signal = Path.Combine(Path.GetTempPath(), $"agentlab-console-{Guid.NewGuid():N}");
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web",
            Sh($"echo early; while [ ! -f '{signal}' ]; do sleep 0.05; done; echo late-line; sleep 300"));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, "early"), "the first line", ct);
        using var client = Client(app);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(Bound);

        var events = new List<SseItem<string>>();
        try
        {
            using var response = await client.GetAsync("api/resources/web/console/stream", HttpCompletionOption.ResponseHeadersRead, bounded.Token);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            await using var stream = await response.Content.ReadAsStreamAsync(bounded.Token);
            await foreach (var item in SseParser.Create(stream).EnumerateAsync(bounded.Token))
            {
                events.Add(item);
                if (item.Data.Contains("\"early\"", StringComparison.Ordinal))
                    await File.WriteAllTextAsync(signal, "go", bounded.Token); // connected and caught up: now the live line
                if (item.Data.Contains("late-line", StringComparison.Ordinal))
                    break;
            }
        }
        finally
        {
            File.Delete(signal);
        }

        var lines = events.Where(e => e.EventType == "line").Select(e => JsonDocument.Parse(e.Data).RootElement).ToList();
        Assert.Equal(["early", "late-line"], lines.Select(l => l.GetProperty("text").GetString()));
        Assert.Equal([1L, 2L], lines.Select(l => l.GetProperty("seq").GetInt64()));
        Assert.Equal(["1", "2"], events.Where(e => e.EventType == "line").Select(e => e.EventId));
    }

    [Fact]
    public async Task Stream_AfterLinesWereOverwritten_SendsAGapThenTheKeptLines()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter(), ("AppHost:LogCapacity", "3"));
        var web = builder.AddExecutable("web", Sh("i=1; while [ $i -le 10 ]; do echo n$i; i=$((i+1)); done; sleep 300"));
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, "n10"), "all output", ct);
        using var client = Client(app);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(Bound);

        var events = new List<SseItem<string>>();
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/resources/web/console/stream?after=0");
        request.Headers.Add("Last-Event-ID", "1"); // wins over after: the browser's reconnect
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, bounded.Token);
        await using var stream = await response.Content.ReadAsStreamAsync(bounded.Token);
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(bounded.Token))
        {
            events.Add(item);
            if (item.Data.Contains("\"n10\"", StringComparison.Ordinal))
                break;
        }

        Assert.Equal("gap", events[0].EventType);
        Assert.Equal(6, JsonDocument.Parse(events[0].Data).RootElement.GetProperty("skipped").GetInt64());
        Assert.Equal(["8", "9", "10"], events.Skip(1).Select(e => e.EventId));
    }

    [Fact]
    public async Task Stream_LabStops_TheStreamEnds()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        var web = builder.AddExecutable("web", Sh("echo hello; sleep 300"));
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        await WaitUntilAsync(() => Texts(web.Resource, "hello"), "the first line", ct);
        using var client = Client(app);
        using var response = await client.GetAsync("api/resources/web/console/stream", HttpCompletionOption.ResponseHeadersRead, ct).WaitAsync(Bound, ct);
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var reader = SseParser.Create(stream).EnumerateAsync(ct).GetAsyncEnumerator(ct);
        Assert.True(await reader.MoveNextAsync().AsTask().WaitAsync(Bound, ct));

        await app.StopAsync().WaitAsync(Bound, ct);
        var ended = await DrainAsync(reader).WaitAsync(Bound, ct);

        Assert.True(ended);
        await reader.DisposeAsync();
        await app.DisposeAsync();
    }

    /// <summary>True once the stream ended (cleanly or cut off).</summary>
    private static async Task<bool> DrainAsync(IAsyncEnumerator<SseItem<string>> reader)
    {
        try
        {
            while (await reader.MoveNextAsync())
            {
            }
        }
        catch (HttpRequestException)
        {
        }
        catch (IOException)
        {
        }
        return true;
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path, CancellationToken ct)
    {
        using var response = await client.GetAsync(path, ct).WaitAsync(Bound, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await JsonAsync(response, ct);
    }

    private static async Task<string[]> TextsAsync(HttpClient client, string path, CancellationToken ct) =>
        [.. (await GetJsonAsync(client, path, ct)).GetProperty("lines").EnumerateArray().Select(l => l.GetProperty("text").GetString()!)];
}
