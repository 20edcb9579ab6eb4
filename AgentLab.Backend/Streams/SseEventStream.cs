using System.Buffers;
using System.Globalization;
using System.Text;
using AgentLab.Backend.Events;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>
/// One execution's events as Server-Sent Events (<c>text/event-stream</c>): <c>id: &lt;seq&gt;</c>, <c>event: &lt;type&gt;</c>,
/// <c>data: &lt;json&gt;</c> per event, a <c>retry:</c> hint first and a <c>: heartbeat</c> comment while idle; the
/// response ends after the terminal event. An early end (replica stopping, client too slow, database unreadable)
/// writes a last <c>event: reconnect</c> carrying <c>last_event_id</c> (it has no <c>id:</c>, so the client's
/// Last-Event-ID stays that of the last real event), then ends; EventSource reconnects by itself with Last-Event-ID.
/// </summary>
/// <remarks>
/// Written by hand rather than with <c>TypedResults.ServerSentEvents</c>: its items cannot be comments (the
/// heartbeat), and it would serialize each event per connection, while here every subscriber writes the same bytes.
/// </remarks>
internal sealed class SseEventStream(Guid executionId, long afterSeq, bool finished) : IResult
{
    public const string ContentType = "text/event-stream";

    public async Task ExecuteAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<StreamOptions>>().Value;
        var open = services.GetRequiredService<OpenStreams>();
        var logger = services.GetRequiredService<ILogger<SseEventStream>>();
        using var slot = open.Enter();

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-cache";
        // nginx buffers proxied responses unless told not to; a buffered event stream is not live.
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var writer = response.BodyWriter;
        writer.Write(Encoding.UTF8.GetBytes($"retry: {options.RetryMilliseconds.ToString(CultureInfo.InvariantCulture)}\n\n"));
        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);

        using var stream = new EventStream(services.GetRequiredService<ExecutionEventHub>(), options, executionId, afterSeq, finished,
            open.Stopping, context.RequestAborted);
        logger.StreamOpened("SSE", executionId, afterSeq);
        var end = await stream.RunAsync(new Sink(writer), options.Heartbeat).ConfigureAwait(false);

        if (stream.Aborted)
        {
            // A write the client was not reading outlived the close timeout: nothing more can be written.
            context.Abort();
        }
        else if (end is StreamEnd.TooSlow or StreamEnd.Stopping or StreamEnd.Unavailable)
        {
            var reason = end switch
            {
                StreamEnd.TooSlow => "too_slow",
                StreamEnd.Stopping => "server_stopping",
                _ => "database_unavailable",
            };
            writer.Write(Encoding.UTF8.GetBytes(
                $"event: reconnect\ndata: {{\"reason\":\"{reason}\",\"last_event_id\":{stream.Last.ToString(CultureInfo.InvariantCulture)}}}\n\n"));
            using var timeout = new CancellationTokenSource(options.CloseTimeout);
            try
            {
                await writer.FlushAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                context.Abort();
            }
        }

        if (end == StreamEnd.TooSlow)
            logger.StreamSlowConsumer("SSE", executionId, options.SendQueueCapacity, stream.Last);
        else if (end == StreamEnd.Unavailable)
            logger.StreamReplayFailed("SSE", executionId, stream.UnavailableReason, stream.Last);
        logger.StreamClosed("SSE", executionId, end.ToString(), stream.Last);
    }

    private sealed class Sink(System.IO.Pipelines.PipeWriter writer) : IEventSink
    {
        private static ReadOnlySpan<byte> Heartbeat => ": heartbeat\n\n"u8;

        public async ValueTask WriteAsync(EventMessage message, CancellationToken ct)
        {
            // The JSON is one line (string escapes keep newlines out of it), so one data: line carries it.
            var header = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"id: {message.Event.LastSeq}\nevent: {message.Event.Type}\ndata: "));
            writer.Write(header);
            writer.Write(message.Utf8.Span);
            writer.Write("\n\n"u8);
            await writer.FlushAsync(ct).ConfigureAwait(false);
        }

        public async ValueTask HeartbeatAsync(CancellationToken ct)
        {
            writer.Write(Heartbeat);
            await writer.FlushAsync(ct).ConfigureAwait(false);
        }
    }
}
