using System.Globalization;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Backend.Security;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace AgentLab.Backend.Streams;

/// <summary>
/// <c>GET /api/v1/ws/executions/{id}</c> (WebSocket) and <c>GET /api/v1/executions/{id}/events</c> (SSE): every event
/// of an execution so far, then the live ones, ending after the terminal event; a reconnect with the last seq seen
/// gets exactly the events after it. Every refusal is a problem answered before the upgrade or the stream starts.
/// </summary>
public static class StreamsApi
{
    public static WebApplication MapStreamsApi(this WebApplication app)
    {
        // Origins are checked by the handler, which can answer with a problem; the middleware's own check answers a
        // bare 403. Keep-alive is set per socket from Streams:HeartbeatSeconds.
        app.UseWebSockets();

        var group = app.MapGroup("/api/v1").WithTags("Streams");

        group.MapGet("/ws/executions/{id}", WebSocketAsync)
            .WithName("StreamExecutionWebSocket")
            .RequireStreamCredential()         // bearer header, or ?ticket= from POST /api/v1/stream-tickets
            .WithSummary("An execution's events over a WebSocket")
            .WithDescription("Upgrade to a WebSocket; one text frame per event ({execution_id, seq, type, node?, data, ts}): every event after " +
                "last_event_id (query, default 0), then the live ones; closes 1000 after the terminal event. Early closes carry " +
                "'resume with last_event_id=<n>' in the reason: 4000 too slow, 1012 server restart, 1013 try again later, 1009 message too big.")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        group.MapGet("/executions/{id}/events", ServerSentEventsAsync)
            .WithName("StreamExecutionEvents")
            .RequireStreamCredential()
            .WithSummary("An execution's events as Server-Sent Events")
            .WithDescription("text/event-stream: 'id: <seq>', 'event: <type>', 'data: <event json>' per event, every event after Last-Event-ID " +
                "(header; or last_event_id in the query), then the live ones; ends after the terminal event. 204 when the execution " +
                "has finished and nothing is left after Last-Event-ID (EventSource then stops reconnecting).")
            .Produces(StatusCodes.Status200OK, contentType: SseEventStream.ContentType)
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return app;
    }

    /// <summary>Checks the request (id, last_event_id, WebSocket, Origin, capacity, the execution) and upgrades it.</summary>
    public static async Task<IResult> WebSocketAsync(string id, HttpContext context, ExecutionEventHub hub, OpenStreams open,
        IOptions<BackendCorsOptions> cors, ILoggerFactory loggers, CancellationToken ct)
    {
        if (!Guid.TryParse(id, out var executionId))
            return NotFound(id);
        var logger = loggers.CreateLogger(typeof(StreamsApi));
        var (after, invalid) = ReadLastEventId(context.Request.Query["last_event_id"], "last_event_id");
        if (invalid is not null)
            return invalid;
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, "websocket_required", "This endpoint is a WebSocket",
                $"Open it with a WebSocket client (GET with 'Connection: Upgrade' and 'Upgrade: websocket', e.g. new WebSocket(\"ws://host/api/v1/ws/executions/{executionId}\")). " +
                $"For plain HTTP, read GET /api/v1/executions/{executionId}/events (Server-Sent Events).");
        }
        // Browsers let any page open a WebSocket to any host, with the page's Origin: only configured origins may.
        // A request with no Origin is not from a browser page, and is allowed.
        if (context.Request.Headers.Origin is { Count: > 0 } origins && !IsAllowed(origins.ToString(), cors.Value.EffectiveOrigins))
        {
            logger.StreamOriginRejected(Shorten(origins.ToString()));
            return Problems.Create(StatusCodes.Status403Forbidden, "origin_not_allowed", "This Origin may not open streams",
                $"The page's Origin '{Shorten(origins.ToString())}' is not in Cors:AllowedOrigins. Add it there (scheme://host[:port]), or connect from an allowed page.");
        }
        if (open.IsFull)
            return TooMany(context, open, logger);
        // Another subject's execution is answered exactly as a missing one, before any event is sent.
        var status = await hub.ReadStatusAsync(executionId, ct, context.Caller().OwnerFilter);
        if (status is null)
            return NotFound(id);
        return new WebSocketEventStream(executionId, after, ExecutionStatus.IsTerminal(status));
    }

    /// <summary>Checks the request (id, Last-Event-ID, capacity, the execution) and starts the event stream.</summary>
    public static async Task<IResult> ServerSentEventsAsync(string id, HttpContext context, ExecutionEventHub hub, OpenStreams open,
        ILoggerFactory loggers, CancellationToken ct)
    {
        if (!Guid.TryParse(id, out var executionId))
            return NotFound(id);
        // EventSource sends Last-Event-ID when it reconnects, to the URL it was given: the header is the newer one.
        var header = context.Request.Headers["Last-Event-ID"];
        var (after, invalid) = header.Count > 0
            ? ReadLastEventId(header, "Last-Event-ID")
            : ReadLastEventId(context.Request.Query["last_event_id"], "last_event_id");
        if (invalid is not null)
            return invalid;
        if (open.IsFull)
            return TooMany(context, open, loggers.CreateLogger(typeof(StreamsApi)));
        // Another subject's execution is answered exactly as a missing one, before any event is sent.
        var status = await hub.ReadStatusAsync(executionId, ct, context.Caller().OwnerFilter);
        if (status is null)
            return NotFound(id);
        var finished = ExecutionStatus.IsTerminal(status);
        // A finished execution with nothing left to send: 204 is the one answer that stops EventSource reconnecting.
        if (finished && (await hub.ReadAfterAsync(executionId, after, ct, limit: 1)).Count == 0)
            return TypedResults.NoContent();
        return new SseEventStream(executionId, after, finished);
    }

    /// <summary>A seq to resume after: absent or empty is 0; otherwise one non-negative integer.</summary>
    public static (long After, ProblemHttpResult? Problem) ReadLastEventId(StringValues values, string name)
    {
        if (values.Count == 0 || (values.Count == 1 && string.IsNullOrWhiteSpace(values[0])))
            return (0, null);
        if (values.Count == 1 && long.TryParse(values[0]!.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var after))
            return (after, null);
        var errors = new Dictionary<string, string[]>
        {
            [name] = [$"'{Shorten(values.ToString())}' is not a seq: send the seq of the last event you received (a non-negative integer), or leave it out to start from the first event."],
        };
        return (0, Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid",
            $"Fix {name} and connect again.", [new("errors", errors)]));
    }

    private static bool IsAllowed(string origin, string[] allowed)
    {
        var trimmed = origin.Trim().TrimEnd('/');
        foreach (var candidate in allowed)
        {
            if (string.Equals(candidate.TrimEnd('/'), trimmed, StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }


    private static ProblemHttpResult NotFound(string id) =>
        Problems.Create(StatusCodes.Status404NotFound, "execution_not_found", "Execution not found",
            $"No execution has the id '{Shorten(id)}'. Ids are the execution_id of POST /api/v1/execute; GET /api/v1/history lists them. " +
            "Finished executions are deleted after the retention period.");

    private static ProblemHttpResult TooMany(HttpContext context, OpenStreams open, ILogger logger)
    {
        logger.StreamRefusedTooMany(open.Count, open.Max);
        context.Response.Headers.RetryAfter = "5";
        return Problems.Create(StatusCodes.Status503ServiceUnavailable, "too_many_streams", "Too many open streams",
            $"This replica already serves {open.Max} streams (Streams:MaxConnections). Retry after 5 s; behind a load balancer the retry may reach another replica.");
    }

    private static string Shorten(string value) => value.Length <= 64 ? value : value[..61] + "...";
}
