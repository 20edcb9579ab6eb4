using System.Text.Json;
using System.Text.Json.Serialization;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.LabService.Orchestration.Definitions;

/// <summary>
/// <c>POST /orchestrate/graphs/validate</c>: checks a custom graph definition without running it. The Backend calls
/// it before registering a graph; it is pure computation, so a caller may retry it freely.
/// </summary>
public static class GraphDefinitionsApi
{
    public const string InvalidGraphCode = "invalid_graph";

    public static RouteGroupBuilder MapGraphDefinitionsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/orchestrate/graphs").WithTags("Orchestration");
        group.MapPost("/validate", ValidateAsync).WithName("ValidateGraph");
        return group;
    }

    public static async Task<Results<JsonHttpResult<GraphValidationResponse>, ProblemHttpResult>> ValidateAsync(
        HttpContext context, ILogger<GraphValidationResponse> logger)
    {
        var ct = context.RequestAborted;
        if (!context.Request.HasJsonContentType())
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
                "Send the graph definition as JSON with 'Content-Type: application/json'.");
        }

        GraphDefinition? graph;
        try
        {
            graph = await context.Request.ReadFromJsonAsync(GraphJsonContext.Default.GraphDefinition, ct);
        }
        catch (JsonException ex)
        {
            var path = ex.Path ?? "$";
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_json", "The graph definition is not valid JSON",
                $"The JSON at '{path}' could not be read: {FirstSentence(ex.Message)} Send an object like " +
                "{\"name\": \"review-loop\", \"entry\": \"writer\", \"nodes\": [{\"name\": \"writer\", \"role\": \"...\"}], " +
                "\"edges\": [{\"from\": \"writer\", \"to\": \"$end\"}]}.",
                [new("json_path", path)]);
        }

        var errors = GraphValidator.Validate(graph);
        if (errors.Count > 0)
        {
            logger.GraphRejected(graph?.Name, errors.Count, errors[0].Path);
            return Invalid(errors);
        }
        return TypedResults.Json(new GraphValidationResponse
        {
            Valid = true,
            Name = graph!.Name!,
            Nodes = graph.Nodes!.Count,
            Edges = graph.Edges!.Count,
            MaxSteps = graph.EffectiveMaxSteps,
        }, GraphJsonContext.Wire.GraphValidationResponse);
    }

    /// <summary>The 400 <c>invalid_graph</c> problem: the first error in <c>detail</c>, all of them in <c>errors</c>.</summary>
    public static ProblemHttpResult Invalid(IReadOnlyList<GraphError> errors) =>
        Problems.Create(StatusCodes.Status400BadRequest, InvalidGraphCode, "The graph definition is not valid",
            $"{errors.Count} problem(s); the first: {errors[0].Path}: {errors[0].Message} See 'errors' for each one with its JSON path.",
            // Plain dictionaries: the problem writer's JSON options are not ours, and these keys must stay lower case.
            [new("errors", errors.Select(e => new Dictionary<string, string> { ["path"] = e.Path, ["message"] = e.Message }).ToArray())]);

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}

/// <summary>The 200 answer of <c>POST /orchestrate/graphs/validate</c>.</summary>
public sealed class GraphValidationResponse
{
    public bool Valid { get; set; }
    public required string Name { get; set; }
    public int Nodes { get; set; }
    public int Edges { get; set; }
    public int MaxSteps { get; set; }
}

/// <summary>
/// JSON for graph definitions: snake_case, strict numbers, and duplicate members refused (a definition with two
/// <c>"to"</c> members would otherwise mean whichever came last).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.Strict,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(GraphDefinition))]
[JsonSerializable(typeof(GraphValidationResponse))]
public sealed partial class GraphJsonContext : JsonSerializerContext
{
    /// <summary>The same contract writing non-ASCII text unescaped (responses are JSON, never embedded in HTML).</summary>
    public static GraphJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
        AllowDuplicateProperties = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
