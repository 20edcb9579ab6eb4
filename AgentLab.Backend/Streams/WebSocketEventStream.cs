using System.Net.WebSockets;
using AgentLab.Backend.Events;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>
/// One execution's events over a WebSocket, once the request passed every check: one text frame per event (its
/// <see cref="ExecutionEventJson"/> bytes), close 1000 after the terminal event. An early end closes with a code and
/// the resume hint <c>resume with last_event_id=&lt;n&gt;</c>: 4000 the client fell behind, 1012 the replica is
/// stopping, 1013 the database cannot be read, 1009 the client sent a message over the limit.
/// </summary>
internal sealed class WebSocketEventStream(Guid executionId, long afterSeq, bool finished) : IResult
{
    /// <summary>Private close code (4000–4999): the send queue overflowed; reconnect with the hint's last_event_id.</summary>
    public const WebSocketCloseStatus TooSlow = (WebSocketCloseStatus)4000;

    /// <summary>RFC 6455 1012 "Service Restart".</summary>
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    /// <summary>RFC 6455 1013 "Try Again Later".</summary>
    public const WebSocketCloseStatus TryAgainLater = (WebSocketCloseStatus)1013;

    public async Task ExecuteAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<StreamOptions>>().Value;
        var open = services.GetRequiredService<OpenStreams>();
        var logger = services.GetRequiredService<ILogger<WebSocketEventStream>>();
        using var slot = open.Enter();

        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            // Proxies cut idle connections (often at 60 s): with a timeout set the server sends real Pings (without
            // one it only sends unsolicited Pongs), and a client that stops answering them is dropped, so a peer that
            // vanished without a close does not keep its subscription and queue for the rest of the run.
            KeepAliveInterval = options.Heartbeat,
            KeepAliveTimeout = options.Heartbeat * 2,
        }).ConfigureAwait(false);
        using var stream = new EventStream(services.GetRequiredService<ExecutionEventHub>(), options, executionId, afterSeq, finished,
            open.Stopping, context.RequestAborted);
        logger.StreamOpened("WebSocket", executionId, afterSeq);

        var receiving = ReceiveAsync(socket, stream, options.MaxClientMessageBytes);
        var end = await stream.RunAsync(new Sink(socket), heartbeat: null).ConfigureAwait(false);
        await CloseAsync(socket, stream, end, receiving, options).ConfigureAwait(false);

        if (end == StreamEnd.TooSlow)
            logger.StreamSlowConsumer("WebSocket", executionId, options.SendQueueCapacity, stream.Last);
        else if (end == StreamEnd.Unavailable)
            logger.StreamReplayFailed("WebSocket", executionId, stream.UnavailableReason, stream.Last);
        logger.StreamClosed("WebSocket", executionId, end.ToString(), stream.Last);
    }

    /// <summary>
    /// Clients are not expected to send anything; reading still matters (it answers the client's close and pings),
    /// and a message over the limit ends the stream. A small buffer: only the size is counted. Ends with the client's
    /// close frame (or the connection).
    /// </summary>
    private static async Task ReceiveAsync(WebSocket socket, EventStream stream, int maxMessageBytes)
    {
        var buffer = new byte[256];
        long size = 0;
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    stream.Wake(StreamEnd.ClientGone);
                    return;
                }
                size += result.Count;
                // Keep reading (and discarding) after that: closing with unread input resets the connection, and
                // the client would lose the close frame that says why.
                if (size > maxMessageBytes)
                    stream.Wake(StreamEnd.MessageTooBig);
                if (result.EndOfMessage)
                    size = 0;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            stream.Wake(StreamEnd.ClientGone);
        }
    }

    private static async Task CloseAsync(WebSocket socket, EventStream stream, StreamEnd end, Task receiving, StreamOptions options)
    {
        var hint = $"resume with last_event_id={stream.Last}";
        var (status, reason) = end switch
        {
            StreamEnd.Terminal or StreamEnd.Finished => (WebSocketCloseStatus.NormalClosure, "end of execution"),
            StreamEnd.TooSlow => (TooSlow, $"too slow; {hint}"),
            StreamEnd.Stopping => (ServiceRestart, hint),
            StreamEnd.MessageTooBig => (WebSocketCloseStatus.MessageTooBig, $"messages over {options.MaxClientMessageBytes} bytes; {hint}"),
            StreamEnd.Unavailable => (TryAgainLater, hint),
            _ => (WebSocketCloseStatus.NormalClosure, ""),
        };
        try
        {
            if (!stream.Aborted && socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(options.CloseTimeout);
                await socket.CloseOutputAsync(status, reason, timeout.Token).ConfigureAwait(false);
                // The client's close frame completes the handshake; a client that never sends it is not waited for.
                await receiving.WaitAsync(options.CloseTimeout).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
            // The client is gone or stuck: dropping the connection below is all that is left.
        }
        finally
        {
            if (socket.State is not WebSocketState.Closed)
                socket.Abort();
        }
    }

    private sealed class Sink(WebSocket socket) : IEventSink
    {
        public ValueTask WriteAsync(EventMessage message, CancellationToken ct) =>
            socket.SendAsync(message.Utf8, WebSocketMessageType.Text, endOfMessage: true, ct);

        public ValueTask HeartbeatAsync(CancellationToken ct) => ValueTask.CompletedTask;
    }
}
