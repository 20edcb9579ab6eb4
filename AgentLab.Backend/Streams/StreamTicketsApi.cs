using System.Text.Json;
using AgentLab.Backend.Security;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Streams;

/// <summary>The answer of <c>POST /api/v1/stream-tickets</c>.</summary>
/// <param name="Ticket">Opaque, single-use; pass it as <c>?ticket=</c> to the execution's WebSocket or SSE endpoint.</param>
/// <param name="ExpiresAt">When it lapses (the database's clock).</param>
/// <param name="ExpiresIn">Its lifetime in seconds (<c>Streams:TicketSeconds</c>).</param>
/// <param name="ExecutionId">The one execution it opens.</param>
public sealed record StreamTicketResponse(string Ticket, DateTimeOffset ExpiresAt, int ExpiresIn, Guid ExecutionId);

/// <summary>
/// <c>POST /api/v1/stream-tickets</c>: a browser's way to open a stream. Browsers cannot set <c>Authorization</c> on a
/// WebSocket or an EventSource, and a long-lived token in a URL ends up in logs and history; a ticket is short-lived,
/// single-use and good for one execution only.
/// </summary>
public static class StreamTicketsApi
{
    /// <summary>A request body is one small JSON object.</summary>
    public const int MaxBodyBytes = 4096;

    public static RouteHandlerBuilder MapStreamTicketsApi(this IEndpointRouteBuilder app) =>
        app.MapPost("/api/v1/stream-tickets", MintAsync)
            .WithTags("Streams")
            .WithName("MintStreamTicket")
            .WithSummary("A short-lived, single-use ticket to open one execution's stream")
            .WithDescription("Body {\"execution_id\": \"<uuid>\"} (bearer token). Answers 201 {ticket, expires_at, expires_in, execution_id}: " +
                "open GET /api/v1/ws/executions/{id}?ticket=... or GET /api/v1/executions/{id}/events?ticket=... within expires_in seconds. " +
                "A ticket works once; to reconnect, mint another and pass last_event_id.")
            .WithMetadata(new RequestSizeLimitAttribute(MaxBodyBytes))
            .Produces<StreamTicketResponse>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound);

    /// <summary>Checks that the caller may see the execution, then mints a ticket bound to both.</summary>
    public static async Task<IResult> MintAsync(HttpContext http, StreamTicketStore tickets, IOptions<StreamTicketOptions> options,
        ILoggerFactory loggers, CancellationToken ct)
    {
        var (executionId, problem) = await ReadExecutionIdAsync(http.Request, ct);
        if (problem is not null)
            return problem;
        var caller = http.Caller();
        // Someone else's execution answers exactly as a missing one: ids are not to be probed.
        if (await tickets.FindOwnerAsync(executionId, ct) is not { } owner || !caller.CanSee(owner))
        {
            return Problems.Create(StatusCodes.Status404NotFound, "execution_not_found", "Execution not found",
                $"No execution of yours has the id '{executionId}'. Ids are the execution_id of POST /api/v1/execute; GET /api/v1/history lists yours.");
        }

        var issued = await tickets.IssueAsync(caller, executionId, ct);
        var seconds = options.Value.TicketSeconds;
        loggers.CreateLogger(typeof(StreamTicketsApi)).StreamTicketIssued(caller.Subject, executionId, seconds);
        // The ticket is a credential: no cache may keep the answer.
        http.Response.Headers.CacheControl = "no-store";
        return TypedResults.Json(new StreamTicketResponse(issued.Ticket, issued.ExpiresAt, seconds, executionId),
            BackendJsonContext.Wire.StreamTicketResponse, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<(Guid ExecutionId, ProblemHttpResult? Problem)> ReadExecutionIdAsync(HttpRequest request, CancellationToken ct)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(request.Body, cancellationToken: ct);
        }
        catch (JsonException)
        {
            return (Guid.Empty, Invalid("The body is not JSON: send {\"execution_id\": \"<uuid>\"} with Content-Type: application/json."));
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("execution_id", out var id)
                || id.ValueKind != JsonValueKind.String)
            {
                return (Guid.Empty, Invalid("execution_id is required: the id of the execution whose stream you want to open."));
            }
            return Guid.TryParse(id.GetString(), out var executionId)
                ? (executionId, null)
                : (Guid.Empty, Invalid("execution_id is not a UUID: send the execution_id that POST /api/v1/execute answered with."));
        }
    }

    private static ProblemHttpResult Invalid(string message) =>
        Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid", "Fix execution_id and try again.",
            [new("errors", new Dictionary<string, string[]> { ["execution_id"] = [message] })]);
}
