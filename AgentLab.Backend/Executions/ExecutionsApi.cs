using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;

namespace AgentLab.Backend.Executions;

/// <summary><c>POST /api/v1/execute</c>.</summary>
public static class ExecutionsApi
{
    public static RouteGroupBuilder MapExecutionsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Executions");

        group.MapPost("/execute", ExecuteAsync)
            .WithName("Execute")
            .WithSummary("Run a prompt")
            .WithDescription("Runs a prompt as one model call (execution_type \"simple\") and answers with the output, the flow and the metrics.")
            // Documented by a transformer, not .Accepts<T>(): Accepts metadata makes routing answer a wrong content
            // type with a bare 415 before the handler can explain it.
            .AddOpenApiOperationTransformer(DescribeRequestBodyAsync)
            .Produces<ExecutionResult>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status501NotImplemented)
            .ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);

        return group;
    }

    private static async Task DescribeRequestBodyAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken ct)
    {
        var schema = await context.GetOrCreateSchemaAsync(typeof(ExecutionRequest), null, ct);
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = schema } },
        };
    }

    /// <summary>Reads and validates the body, then runs the execution and answers with its result.</summary>
    public static async Task<Results<JsonHttpResult<ExecutionResult>, ProblemHttpResult>> ExecuteAsync(
        HttpRequest request, ExecutionRunner runner, IOptions<ExecutionOptions> options, CancellationToken ct)
    {
        var (body, problem) = await ExecutionRequestReader.ReadAsync(request, options.Value, ct);
        if (problem is not null)
            return problem;

        if (NotYetAvailable(body!, request.Headers["Prefer"]) is { } notImplemented)
            return notImplemented;

        var result = await runner.RunSimpleAsync(body!, ct);
        return TypedResults.Json(result, BackendJsonContext.Wire.ExecutionResult);
    }

    /// <summary>The 501 for what arrives in later issues (the orchestrator; async runs, which need persistence).</summary>
    public static ProblemHttpResult? NotYetAvailable(ExecutionRequest request, Microsoft.Extensions.Primitives.StringValues prefer)
    {
        if (request.ExecutionType is { } type && ExecutionRequestReader.IsOneOf(type, [ExecutionKinds.Orchestrator]))
        {
            return Problems.Create(StatusCodes.Status501NotImplemented, "not_implemented", "Not implemented yet",
                "The orchestrator execution type is not available yet; use \"simple\".");
        }

        if ((request.Mode is { } mode && ExecutionRequestReader.IsOneOf(mode, [ExecutionKinds.Async])) || PrefersAsync(prefer))
        {
            return Problems.Create(StatusCodes.Status501NotImplemented, "not_implemented", "Not implemented yet",
                "Asynchronous executions (\"mode\": \"async\" or Prefer: respond-async) are not available yet; use \"sync\" (the default).");
        }

        return null;
    }

    private static bool PrefersAsync(Microsoft.Extensions.Primitives.StringValues prefer)
    {
        foreach (var header in prefer)
        {
            foreach (var preference in (header ?? "").Split(','))
            {
                var token = preference.Split(';')[0].Trim();
                if (token.Equals("respond-async", StringComparison.OrdinalIgnoreCase))
                    return true;
            }
        }
        return false;
    }
}
