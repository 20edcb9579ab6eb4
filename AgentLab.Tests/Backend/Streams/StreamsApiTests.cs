using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace AgentLab.Tests.Backend.Streams;

/// <summary>The two stream endpoints in memory: the subscriber protocol, refusals before the upgrade, heartbeats, shutdown.</summary>
public sealed class StreamsApiTests : StreamsTestBase
{
    [Fact]
    public async Task WebSocket_NewSubscriber_GetsEveryEventSoFarThenTheLiveOnesThenNormalClose()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(5, Ct);
        using var socket = await ConnectAsync(factory, producer.ExecutionId);
        var replayed = new List<ExecutionEvent>();
        for (var i = 0; i < 5; i++)
            replayed.Add((await StreamClient.ReceiveAsync(socket, Ct))!);

        await producer.WriteAsync(5, Ct);
        await producer.FinishAsync(Ct);
        var live = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(StreamClient.Seqs(1, 5), replayed.Select(e => e.Seq));
        Assert.Equal(StreamClient.Seqs(6, 11), live.Select(e => e.Seq));
        Assert.Equal("t7", live[1].Data.GetProperty("text").GetString());
        Assert.Equal(EventTypes.ExecutionCompleted, live[^1].Type);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        await EventuallyAsync(() => Hub(factory).Counters is { Feeds: 0, Subscribers: 0 }, "the feed ended with its last subscriber");
    }

    [Fact]
    public async Task WebSocket_ReconnectWithLastEventId_GetsExactlyTheEventsAfterIt()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(10, Ct);
        using var socket = await ConnectAsync(factory, producer.ExecutionId, after: 4);
        var replayed = new List<ExecutionEvent>();
        for (var i = 0; i < 6; i++)
            replayed.Add((await StreamClient.ReceiveAsync(socket, Ct))!);

        await producer.WriteAsync(3, Ct);
        await producer.FinishAsync(Ct);
        var live = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(StreamClient.Seqs(5, 14), replayed.Concat(live).Select(e => e.Seq));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task WebSocket_FinishedExecution_ReplaysThenCloses()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(3, Ct);
        await producer.FinishAsync(Ct);

        using var socket = await ConnectAsync(factory, producer.ExecutionId);
        var events = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(StreamClient.Seqs(1, 4), events.Select(e => e.Seq));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Equal(0, Hub(factory).Counters.RedisSubscriptions);
    }

    [Fact]
    public async Task Sse_ReconnectWithLastEventIdHeader_GetsExactlyTheRestThenEndsAfterTheTerminalEvent()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(10, Ct);
        using var client = factory.CreateClient();
        // EventSource reconnects to the URL it was given, adding the newer Last-Event-ID header: the header wins.
        using var request = new HttpRequestMessage(HttpMethod.Get, StreamClient.SsePath(producer.ExecutionId) + "?last_event_id=2");
        request.Headers.Add("Last-Event-ID", "6");

        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        var frames = new List<StreamClient.SseFrame>();
        await foreach (var frame in StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct))
        {
            frames.Add(frame);
            if (frame.Id == "10")
            {
                await producer.WriteAsync(2, Ct);
                await producer.FinishAsync(Ct);
            }
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", response.Headers.CacheControl?.ToString());
        Assert.Equal("no", response.Headers.GetValues("X-Accel-Buffering").Single());
        Assert.Equal(StreamClient.Seqs(7, 13).Select(s => s.ToString()), frames.Select(f => f.Id));
        Assert.All(frames, f => Assert.Equal(f.Id, JsonDocument.Parse(f.Data!).RootElement.GetProperty("seq").GetInt64().ToString()));
        Assert.Equal(EventTypes.Token, frames[0].Event);
        Assert.Equal(EventTypes.ExecutionCompleted, frames[^1].Event);
    }

    [Fact]
    public async Task Sse_FinishedExecution_ReplaysAndEnds_AndAReconnectAfterTheEndGets204()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(3, Ct);
        await producer.FinishAsync(Ct);
        using var client = factory.CreateClient();

        using var response = await client.GetAsync(StreamClient.SsePath(producer.ExecutionId), HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        var frames = new List<StreamClient.SseFrame>();
        await foreach (var frame in StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct))
            frames.Add(frame);
        using var reconnect = new HttpRequestMessage(HttpMethod.Get, StreamClient.SsePath(producer.ExecutionId));
        reconnect.Headers.Add("Last-Event-ID", "4");
        using var afterEnd = await client.SendAsync(reconnect, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(["1", "2", "3", "4"], frames.Select(f => f.Id));
        Assert.Equal(HttpStatusCode.NoContent, afterEnd.StatusCode);
    }

    [Theory]
    [InlineData("/api/v1/executions/{unknown}/events")]
    [InlineData("/api/v1/executions/not-a-guid/events")]
    [InlineData("/api/v1/ws/executions/not-a-guid")]
    public async Task UnknownOrMalformedExecution_Answers404ExecutionNotFound(string path)
    {
        using var client = Replica().CreateClient();

        var response = await client.GetAsync(path.Replace("{unknown}", Guid.CreateVersion7().ToString()), Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(response, 404, "execution_not_found");
    }

    [Fact]
    public async Task WebSocket_UnknownExecution_IsRefusedBeforeTheUpgrade()
    {
        var factory = Replica();

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => ConnectAsync(factory, Guid.CreateVersion7()));

        Assert.Contains("404", refused.Message);
    }

    [Fact]
    public async Task WebSocketPath_PlainGet_Answers400WebSocketRequired()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        using var client = factory.CreateClient();

        var response = await client.GetAsync(StreamClient.WebSocketPath(producer.ExecutionId), Ct).WaitAsync(Bound, Ct);

        var problem = await AssertProblemAsync(response, 400, "websocket_required");
        Assert.Contains("Upgrade: websocket", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("ws", "-1")]
    [InlineData("ws", "abc")]
    [InlineData("sse-query", "1.5")]
    [InlineData("sse-header", "x")]
    public async Task BadLastEventId_Answers400ValidationFailed(string where, string value)
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        using var client = factory.CreateClient();
        var id = producer.ExecutionId;
        using var request = new HttpRequestMessage(HttpMethod.Get, where switch
        {
            "ws" => $"/api/v1/ws/executions/{id}?last_event_id={Uri.EscapeDataString(value)}",
            "sse-query" => $"{StreamClient.SsePath(id)}?last_event_id={Uri.EscapeDataString(value)}",
            _ => StreamClient.SsePath(id),
        });
        if (where == "sse-header")
            request.Headers.TryAddWithoutValidation("Last-Event-ID", value);

        var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        var problem = await AssertProblemAsync(response, 400, "validation_failed");
        Assert.Equal(JsonValueKind.Array, problem.GetProperty("errors").EnumerateObject().Single().Value.ValueKind);
    }

    [Fact]
    public async Task Sse_Idle_SendsAHeartbeatComment()
    {
        var factory = Replica(new Dictionary<string, string?> { ["Streams:HeartbeatSeconds"] = "1" });
        await using var producer = await ProducerAsync(Publisher(factory));
        using var client = factory.CreateClient();

        using var response = await client.GetAsync(StreamClient.SsePath(producer.ExecutionId), HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        StreamClient.SseFrame? first = null;
        await foreach (var frame in StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct))
        {
            first = frame;
            break;
        }

        Assert.Equal("heartbeat", first?.Comment);
    }

    [Fact]
    public async Task Shutdown_ClosesWebSocketsWith1012AndSseWithAReconnectEvent_BothCarryingTheResumeHint()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(3, Ct);
        using var socket = await ConnectAsync(factory, producer.ExecutionId);
        for (var i = 0; i < 3; i++)
            await StreamClient.ReceiveAsync(socket, Ct);
        using var client = factory.CreateClient();
        using var response = await client.GetAsync(StreamClient.SsePath(producer.ExecutionId), HttpCompletionOption.ResponseHeadersRead, Ct).WaitAsync(Bound, Ct);
        var sse = StreamClient.ReadFramesAsync(await response.Content.ReadAsStreamAsync(Ct), Ct).GetAsyncEnumerator(Ct);
        for (var i = 0; i < 3; i++)
            Assert.True(await sse.MoveNextAsync());

        factory.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        var afterStop = await StreamClient.ReceiveAsync(socket, Ct);
        Assert.True(await sse.MoveNextAsync());
        var last = sse.Current;
        var ended = !await sse.MoveNextAsync();
        await sse.DisposeAsync();

        Assert.Null(afterStop);
        Assert.Equal(1012, (int)socket.CloseStatus!.Value);
        Assert.Equal("resume with last_event_id=3", socket.CloseStatusDescription);
        Assert.Equal("reconnect", last.Event);
        Assert.Null(last.Id);
        var data = JsonDocument.Parse(last.Data!).RootElement;
        Assert.Equal("server_stopping", data.GetProperty("reason").GetString());
        Assert.Equal(3, data.GetProperty("last_event_id").GetInt64());
        Assert.True(ended);
    }

    [Fact]
    public async Task Reconnects_1000RandomCutsOverALiveProducer_TheClientsSeeEveryEventOnceInOrder()
    {
        var factory = Replica();
        await using var producer = await ProducerAsync(Publisher(factory));
        const int clients = 4, cutsEach = 250, total = 3000;
        var producing = Task.Run(async () =>
        {
            while (producer.Seq < total)
                await producer.WriteAsync(20, Ct);
            await producer.FinishAsync(Ct);
        }, Ct);
        var connecting = System.Diagnostics.Stopwatch.StartNew();
        long connectTicks = 0;

        // Each client cuts its connection 250 times at random points (about 9 events apart, so the cuts spread
        // over the whole run, the first ones while it is live), resuming each time from the last seq it saw.
        var seen = await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var random = new Random(1000 + c);
            var got = new List<long>();
            long last = 0;
            for (var cut = 0; ; cut++)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                using var socket = await Support.TestTokens.WebSockets(factory.Server)
                    .ConnectAsync(new Uri(factory.Server.BaseAddress, StreamClient.WebSocketPath(producer.ExecutionId, last)), Ct).WaitAsync(Bound, Ct);
                Interlocked.Add(ref connectTicks, System.Diagnostics.Stopwatch.GetTimestamp() - started);
                var take = cut < cutsEach ? random.Next(0, 20) : int.MaxValue;
                for (var i = 0; i < take; i++)
                {
                    if (await StreamClient.ReceiveAsync(socket, Ct) is not { } e)
                        return (got, socket.CloseStatus, cuts: cut);
                    got.Add(e.Seq);
                    last = e.LastSeq;
                }
                // Half the cuts are a clean close, half a dropped connection.
                if (random.Next(2) == 0)
                    socket.Abort();
                else
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", Ct).WaitAsync(Bound, Ct);
            }
        }, Ct)));
        await producing.WaitAsync(Bound, Ct);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{seen.Sum(s => s.cuts)} cuts in {connecting.ElapsedMilliseconds} ms, connects took {TimeSpan.FromTicks(connectTicks * TimeSpan.TicksPerSecond / System.Diagnostics.Stopwatch.Frequency).TotalMilliseconds / seen.Sum(s => s.cuts + 1):0.0} ms on average");

        Assert.Equal(total + 1, producer.Seq);
        Assert.All(seen, s =>
        {
            Assert.Equal(cutsEach, s.cuts);
            Assert.Equal(StreamClient.Seqs(1, total + 1), s.got);
            Assert.Equal(WebSocketCloseStatus.NormalClosure, s.CloseStatus);
        });
        await EventuallyAsync(() => Hub(factory).Counters is { Feeds: 0, Subscribers: 0 }, "every subscriber left");
    }

    [Fact]
    public void ReadLastEventId_AcceptsAbsentEmptyAndNonNegativeIntegers_RefusesTheRest()
    {
        Assert.Equal(0, AgentLab.Backend.Streams.StreamsApi.ReadLastEventId(default, "last_event_id").After);
        Assert.Equal(0, AgentLab.Backend.Streams.StreamsApi.ReadLastEventId("", "last_event_id").After);
        Assert.Equal(42, AgentLab.Backend.Streams.StreamsApi.ReadLastEventId(" 42 ", "Last-Event-ID").After);
        Assert.NotNull(AgentLab.Backend.Streams.StreamsApi.ReadLastEventId(new(["1", "2"]), "last_event_id").Problem);
        Assert.NotNull(AgentLab.Backend.Streams.StreamsApi.ReadLastEventId("+1", "last_event_id").Problem);
    }

    private static Task<WebSocket> ConnectAsync(BackendFactory factory, Guid id, long? after = null) =>
        Support.TestTokens.WebSockets(factory.Server).ConnectAsync(new Uri(factory.Server.BaseAddress, StreamClient.WebSocketPath(id, after)), Ct)
            .WaitAsync(Bound, Ct);
}
