using AgentLab.Backend.Lab;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Models;

/// <summary><c>GET /api/v1/models</c>: the models LabService can run, in LabService's own shape.</summary>
public static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Models");

        group.MapGet("/models", GetModelsAsync)
            .WithName("GetModels")
            .WithSummary("List the models the lab can run")
            .Produces<ModelList>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);

        return group;
    }

    public static async Task<JsonHttpResult<ModelList>> GetModelsAsync(
        LabServiceReadClient lab, IOptions<LabServiceOptions> options, CancellationToken ct)
    {
        // Failures surface as LabService exceptions, mapped in one place by BackendExceptionHandler.
        var models = await lab.GetModelsAsync(TimeSpan.FromSeconds(options.Value.QueryTimeoutSeconds), ct);
        return TypedResults.Json(models, BackendJsonContext.Wire.ModelList);
    }
}
