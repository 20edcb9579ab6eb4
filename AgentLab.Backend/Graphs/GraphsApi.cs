using System.Text;
using AgentLab.Backend.Lab;
using AgentLab.Backend.Security;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Graphs;

/// <summary>
/// <c>/api/v1/graphs</c>: custom graphs registered by name. LabService validates every definition before it is
/// stored; a graph is run with <c>"graph": "&lt;name&gt;"</c> on an orchestrator execution.
/// </summary>
/// <remarks>
/// Graphs belong to the subject that registered them: names are per owner, and every call works in the caller's own
/// graphs (an execution naming a graph finds it there too). An admin lists every owner's graphs and may pass
/// <c>?owner=</c> to read, register, replace or delete one subject's.
/// Registering a name that holds another definition is 409 <c>graph_exists</c> unless <c>?replace=true</c>
/// (then 200, version + 1): a typo in a name must not silently overwrite someone's graph. Registering the very same
/// definition again is 200 with nothing changed, so a client may retry a registration whose answer it lost.
/// </remarks>
public static class GraphsApi
{
    /// <summary>Largest definition accepted (20 nodes of 8,000-character roles fit with room to spare).</summary>
    public const int MaxDefinitionBytes = 256 * 1024;

    public static RouteGroupBuilder MapGraphsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/graphs").WithTags("Graphs");

        group.MapPost("", RegisterAsync)
            .WithName("RegisterGraph")
            .WithSummary("Register a custom graph (validated by LabService)")
            .WithDescription(
                "Body: a graph definition {name, description?, entry, max_steps?, nodes: [{name, role, model?, output: text|verdict, " +
                "tools?}], edges: [{from, to, when?: pass|revise|fail}]}. 201 with Location when new; 200 when the same definition " +
                "is already registered (unchanged) or, with ?replace=true, when it replaced another (version + 1); 409 graph_exists " +
                "when the name holds another definition; 400 invalid_graph with errors [{path, message}].")
            .Accepts<GraphDetail>("application/json")
            .Produces<GraphDetail>(StatusCodes.Status201Created)
            .Produces<GraphDetail>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        group.MapGet("", ListAsync).WithName("ListGraphs").WithSummary("Registered graphs, by name")
            .Produces<GraphList>(StatusCodes.Status200OK).ProducesProblem(StatusCodes.Status400BadRequest);
        group.MapGet("/{name}", GetAsync).WithName("GetGraph").WithSummary("A registered graph with its definition")
            .Produces<GraphDetail>(StatusCodes.Status200OK).ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/{name}", DeleteAsync).WithName("DeleteGraph").WithSummary("Remove a registered graph")
            .Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound);
        return group;
    }

    public static async Task<IResult> RegisterAsync(HttpContext context, GraphStore store, LabServiceReadClient lab,
        IOptions<LabServiceOptions> options, IOptions<Executions.OrchestratorOptions> orchestrator, ILogger<GraphStore> logger, CancellationToken ct)
    {
        var request = context.Request;
        bool replace;
        switch (request.Query["replace"].ToString())
        {
            case "" or "false":
                replace = false;
                break;
            case "true":
                replace = true;
                break;
            default:
                return Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid",
                    "'replace' must be true or false.", [new("errors", new Dictionary<string, string[]> { ["replace"] = ["must be true or false"] })]);
        }
        var (owner, badOwner) = ReadOwner(context, all: false);
        if (badOwner is not null)
            return badOwner;
        if (!request.HasJsonContentType())
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "The request body must be JSON",
                $"Content-Type was '{request.ContentType ?? "(none)"}'; send the graph definition as 'application/json'.");
        }
        if (await ReadBodyAsync(request, ct) is not { } body)
        {
            return Security.RequestBodyLimit.Problem(MaxDefinitionBytes, $"A graph definition may be at most {MaxDefinitionBytes / 1024} KiB.");
        }

        // LabService owns the rules (the same validator its runtime trusts); its 400 passes through as is.
        var validation = await lab.ValidateGraphAsync(body, TimeSpan.FromSeconds(options.Value.QueryTimeoutSeconds), ct);
        if (GraphBounds.Check(validation, orchestrator.Value.MaxStepsLimit) is { } overBound)
            return overBound;
        var (outcome, record) = await store.SaveAsync(owner!, validation.Name, Encoding.UTF8.GetString(body), replace, ct);
        if (outcome == GraphWriteOutcome.Conflict)
        {
            return Problems.Create(StatusCodes.Status409Conflict, "graph_exists", "A graph with this name exists",
                $"'{record.Name}' is already registered (version {record.Version}) with another definition. Send it with " +
                "?replace=true to replace it, or choose another name.",
                [new("name", record.Name), new("version", record.Version)]);
        }

        logger.GraphSaved(record.Name, outcome.ToString().ToLowerInvariant(), record.Version);
        if (outcome == GraphWriteOutcome.Created)
            context.Response.Headers.Location = $"/api/v1/graphs/{record.Name}" + (owner == context.Caller().Subject ? "" : $"?owner={Uri.EscapeDataString(owner!)}");
        return TypedResults.Json(GraphDetail.From(record), BackendJsonContext.Wire.GraphDetail,
            statusCode: outcome == GraphWriteOutcome.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    public static async Task<IResult> ListAsync(HttpContext context, GraphStore store, CancellationToken ct)
    {
        var (owner, badOwner) = ReadOwner(context, all: true);
        if (badOwner is not null)
            return badOwner;
        return TypedResults.Json(new GraphList { Graphs = await store.ListAsync(owner, ct) }, BackendJsonContext.Wire.GraphList);
    }

    public static async Task<IResult> GetAsync(string name, HttpContext context, GraphStore store, CancellationToken ct)
    {
        var (owner, badOwner) = ReadOwner(context, all: false);
        if (badOwner is not null)
            return badOwner;
        return await store.FindAsync(owner!, name, ct) is { } record
            ? TypedResults.Json(GraphDetail.From(record), BackendJsonContext.Wire.GraphDetail)
            : NotFound(name);
    }

    public static async Task<IResult> DeleteAsync(string name, HttpContext context, GraphStore store,
        ILogger<GraphStore> logger, CancellationToken ct)
    {
        var (owner, badOwner) = ReadOwner(context, all: false);
        if (badOwner is not null)
            return badOwner;
        if (!await store.DeleteAsync(owner!, name, ct))
            return NotFound(name);
        logger.GraphDeleted(name);
        return TypedResults.NoContent();
    }

    /// <summary>
    /// Whose graphs a call works in: the caller's own, or for an admin the subject <c>?owner=</c> names (with
    /// <paramref name="all"/>, a listing, an admin without it sees every owner's: null). Only an admin may name another.
    /// </summary>
    private static (string? Owner, ProblemHttpResult? Problem) ReadOwner(HttpContext context, bool all)
    {
        var caller = context.Caller();
        var values = context.Request.Query["owner"];
        if (values.Count == 0)
            return (all ? caller.OwnerFilter : caller.Subject, null);
        if (values.Count == 1 && values[0] is { Length: <= 200 } named && caller.CanSee(named))
            return (named, null);
        return (null, Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid",
            "Only a caller with the admin role may name another subject's graphs (owner, once, up to 200 characters); leave owner out for your own.",
            [new("errors", new Dictionary<string, string[]> { ["owner"] = ["only an admin may name another owner"] })]));
    }

    private static ProblemHttpResult NotFound(string name) =>
        Problems.Create(StatusCodes.Status404NotFound, "graph_not_found", "Graph not found",
            $"No graph is registered as '{(name.Length <= 60 ? name : name[..57] + "...")}'. GET /api/v1/graphs lists them; " +
            "POST /api/v1/graphs registers one.");

    /// <summary>The body, or null when it is larger than <see cref="MaxDefinitionBytes"/>.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > MaxDefinitionBytes)
            return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > MaxDefinitionBytes)
                return null;
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}
