using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using AgentLab.Backend.Events;
using AgentLab.Backend.Streams;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Streams;

/// <summary>Streams on real Kestrel sockets: what an in-memory server cannot show (buffers, handshakes, resets).</summary>
public sealed class StreamSocketTests : StreamsTestBase
{
    [Fact]
    public async Task WebSocket_UnknownExecution_Answers404ProblemBeforeTheUpgrade()
    {
        var (factory, address) = KestrelReplica();
        await using var _ = factory;
        using var socket = Support.TestTokens.Socket();
        socket.Options.CollectHttpResponseDetails = true;

        await Assert.ThrowsAsync<WebSocketException>(() =>
            socket.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(Guid.CreateVersion7())), Ct).WaitAsync(Bound, Ct));

        Assert.Equal(HttpStatusCode.NotFound, socket.HttpStatusCode);
        Assert.False(socket.HttpResponseHeaders!.ContainsKey("Upgrade"));
    }

    [Fact]
    public async Task WebSocket_ForeignOrigin_IsRefused403_AllowedOrNoOriginConnects()
    {
        var (factory, address) = KestrelReplica(new Dictionary<string, string?> { ["Cors:AllowedOrigins:0"] = "http://app.example:3000" });
        await using var _ = factory;
        await using var producer = await ProducerAsync(Publisher(factory));
        var uri = KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId));
        using var foreign = Support.TestTokens.Socket();
        foreign.Options.CollectHttpResponseDetails = true;
        foreign.Options.SetRequestHeader("Origin", "http://evil.example");
        using var allowed = Support.TestTokens.Socket();
        allowed.Options.SetRequestHeader("Origin", "http://app.example:3000");
        using var noOrigin = Support.TestTokens.Socket();

        await Assert.ThrowsAsync<WebSocketException>(() => foreign.ConnectAsync(uri, Ct).WaitAsync(Bound, Ct));
        await allowed.ConnectAsync(uri, Ct).WaitAsync(Bound, Ct);
        await noOrigin.ConnectAsync(uri, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.Forbidden, foreign.HttpStatusCode);
        Assert.Equal(WebSocketState.Open, allowed.State);
        Assert.Equal(WebSocketState.Open, noOrigin.State);
    }

    [Fact]
    public async Task WebSocket_ClientMessageOverTheLimit_IsClosedWith1009AndTheResumeHint()
    {
        var (factory, address) = KestrelReplica(new Dictionary<string, string?> { ["Streams:MaxClientMessageBytes"] = "1024" });
        await using var _ = factory;
        await using var producer = await ProducerAsync(Publisher(factory));
        await producer.WriteAsync(2, Ct);
        using var socket = Support.TestTokens.Socket();
        await socket.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId)), Ct).WaitAsync(Bound, Ct);
        for (var i = 0; i < 2; i++)
            await StreamClient.ReceiveAsync(socket, Ct);

        // A small message is ignored; a big one ends the stream.
        await socket.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, Ct).WaitAsync(Bound, Ct);
        await socket.SendAsync(new byte[5000], WebSocketMessageType.Binary, true, Ct).WaitAsync(Bound, Ct);
        var rest = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Empty(rest);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, socket.CloseStatus);
        Assert.Equal("messages over 1024 bytes; resume with last_event_id=2", socket.CloseStatusDescription);
    }

    [Fact]
    public async Task SlowConsumer_ThatNeverReads_IsClosedWithTheResumeHint_AndItsSubscriberIsGone()
    {
        const int capacity = 64;
        var (factory, address) = KestrelReplica(new Dictionary<string, string?>
        {
            ["Streams:SendQueueCapacity"] = capacity.ToString(),
            // Long enough for this test to start reading after it saw the overflow, so the close frame gets through.
            ["Streams:CloseTimeoutMilliseconds"] = "15000",
            // Stuck while still replaying is too slow as well, after this long.
            ["Streams:ReplayLagSeconds"] = "1",
        });
        await using var _ = factory;
        await using var producer = await ProducerAsync(Publisher(factory));
        // A small receive window, so the server's socket fills after a few hundred kilobytes, not megabytes.
        using var handler = new SocketsHttpHandler { ConnectCallback = ConnectWithSmallBufferAsync };
        using var socket = Support.TestTokens.Socket();
        await socket.ConnectAsync(KestrelBackend.WebSocketUri(address, StreamClient.WebSocketPath(producer.ExecutionId)), new HttpMessageInvoker(handler), Ct)
            .WaitAsync(Bound, Ct);
        await EventuallyAsync(() => Hub(factory).SubscriberCount(producer.ExecutionId) == 1, "the stream subscribed");

        for (var batch = 0; batch < 40 && Hub(factory).Counters.SlowSubscribers == 0; batch++)
            await producer.WriteAsync(100, Ct, padBytes: 8000);
        await EventuallyAsync(() => Hub(factory).Counters is { SlowSubscribers: 1, Subscribers: 0, Feeds: 0 }, "the slow subscriber was dropped");
        var written = producer.Seq;
        var received = await StreamClient.ReadToCloseAsync(socket, Ct);

        Assert.Equal(4000, (int)socket.CloseStatus!.Value);
        // Under load the stream can be dropped before it sent anything; the hint then says 0.
        Assert.Equal($"too slow; resume with last_event_id={received.LastOrDefault()?.Seq ?? 0}", socket.CloseStatusDescription);
        Assert.Equal(StreamClient.Seqs(1, received.Count), received.Select(e => e.Seq));
        Assert.True(received.Count < written, $"the client got all {written} events: it never fell behind");
        Assert.InRange(Hub(factory).Counters.MaxQueued, 1, capacity);
        await EventuallyAsync(() => factory.Services.GetRequiredService<OpenStreams>().Count == 0, "the connection ended");
    }

    [Fact]
    public async Task WebSocket_ClientThatStopsAnsweringPings_IsDropped_AndItsSubscriberIsGone()
    {
        var (factory, address) = KestrelReplica(new Dictionary<string, string?> { ["Streams:HeartbeatSeconds"] = "1" });
        await using var _ = factory;
        await using var producer = await ProducerAsync(Publisher(factory));
        var open = factory.Services.GetRequiredService<OpenStreams>();
        // A peer that vanished without a close: the socket stays open at the TCP level but nothing answers.
        using var socket = await RawConnectAsync(address, $"GET {StreamClient.WebSocketPath(producer.ExecutionId)} HTTP/1.1", "101");
        await EventuallyAsync(() => Hub(factory).SubscriberCount(producer.ExecutionId) == 1, "the stream subscribed");

        var sawPing = false;
        var buffer = new byte[4096];
        while (!sawPing)
        {
            var n = await socket.ReceiveAsync(buffer, Ct).AsTask().WaitAsync(Bound, Ct);
            Assert.True(n > 0, "the server closed the connection before it pinged");
            // Server frames are unmasked: the first byte is FIN + opcode, 0x89 for a Ping (not 0x8A, an unsolicited Pong).
            sawPing = buffer.AsSpan(0, n).Contains((byte)0x89);
        }
        await EventuallyAsync(() => open.Count == 0, "the unanswering connection was dropped");

        Assert.True(sawPing);
        Assert.Equal(0, Hub(factory).SubscriberCount(producer.ExecutionId));
    }

    [Fact]
    public async Task IdleConnections_ManyWebSocketsAndSseStreams_OnOneExecution_ShareOneFeed()
    {
        var (factory, address) = KestrelReplica();
        await using var _ = factory;
        await using var producer = await ProducerAsync(Publisher(factory));
        var open = factory.Services.GetRequiredService<OpenStreams>();
        var sockets = new List<Socket>();
        // Enough to see the cost of an idle connection above the noise, few enough to stay a test (the benchmark goes further).
        const int each = 300;
        var before = Measure();

        try
        {
            for (var i = 0; i < each; i++)
                sockets.Add(await RawConnectAsync(address, $"GET {StreamClient.WebSocketPath(producer.ExecutionId)} HTTP/1.1", "101"));
            await EventuallyAsync(() => open.Count == each, "the WebSockets are open");
            var withWebSockets = Measure();
            for (var i = 0; i < each; i++)
                sockets.Add(await RawConnectAsync(address, $"GET {StreamClient.SsePath(producer.ExecutionId)} HTTP/1.1", "200"));
            await EventuallyAsync(() => open.Count == 2 * each, "the SSE streams are open too");
            var withSse = Measure();
            var counters = Hub(factory).Counters;

            TestContext.Current.TestOutputHelper?.WriteLine(
                $"per idle WebSocket: {(withWebSockets.Managed - before.Managed) / (double)each:0} B managed, {(withWebSockets.Process - before.Process) / (double)each:0} B process; " +
                $"per idle SSE: {(withSse.Managed - withWebSockets.Managed) / (double)each:0} B managed, {(withSse.Process - withWebSockets.Process) / (double)each:0} B process " +
                "(server and raw client sockets in one process)");
            Assert.Equal(1, counters.Feeds);
            Assert.Equal(2 * each, counters.Subscribers);
        }
        finally
        {
            foreach (var socket in sockets)
                socket.Dispose();
        }
    }

    private static (long Managed, long Process) Measure()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return (GC.GetTotalMemory(forceFullCollection: true), process.PrivateMemorySize64);
    }

    /// <summary>A bare client: a socket with a hand-written request, read up to the response head, then left idle.</summary>
    private static async Task<Socket> RawConnectAsync(Uri address, string requestLine, string expectedStatus)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(address.Host, address.Port, Ct).AsTask().WaitAsync(Bound, Ct);
        var request = $"{requestLine}\r\nHost: {address.Authority}\r\nAuthorization: {Support.TestTokens.Header()}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        if (!requestLine.Contains("/ws/"))
            request = $"{requestLine}\r\nHost: {address.Authority}\r\nAuthorization: {Support.TestTokens.Header()}\r\nAccept: text/event-stream\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request), Ct).AsTask().WaitAsync(Bound, Ct);
        var buffer = new byte[1024];
        var head = new StringBuilder();
        while (!head.ToString().Contains("\r\n\r\n"))
        {
            var n = await socket.ReceiveAsync(buffer, Ct).AsTask().WaitAsync(Bound, Ct);
            Assert.True(n > 0, "the server closed the connection");
            head.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        Assert.StartsWith($"HTTP/1.1 {expectedStatus}", head.ToString());
        return socket;
    }

    private static async ValueTask<Stream> ConnectWithSmallBufferAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096, NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
