using System.Text.Json;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Ollama;
using AgentLab.ServiceDefaults;

namespace AgentLab.LabService.Models;

public sealed class ModelsResponse
{
    public required string ModelServer { get; set; }

    /// <summary>The tag a request without <c>model</c> runs on (<c>Lab:DefaultModel</c>, alias resolved).</summary>
    public string? DefaultModel { get; set; }

    /// <summary>
    /// The <c>num_ctx</c> sent to the model server when a request sets none (<c>Ollama:DefaultNumCtx</c>): the real
    /// context window of such a call, which the Backend checks prompts against.
    /// </summary>
    public int? DefaultNumCtx { get; set; }

    public required List<ModelDto> Models { get; set; }
}

public sealed class ModelDto
{
    public required string Name { get; set; }
    public required IReadOnlyList<string> Aliases { get; set; }
    public string? Family { get; set; }
    public string? ParameterSize { get; set; }
    public string? QuantizationLevel { get; set; }
    public long Size { get; set; }
    public string? ModifiedAt { get; set; }
    public required IReadOnlyList<string> Capabilities { get; set; }
    public int? ContextLength { get; set; }
    public bool Loaded { get; set; }

    public static ModelDto From(LabModel m) => new()
    {
        Name = m.Name,
        Aliases = m.Aliases,
        Family = m.Family,
        ParameterSize = m.ParameterSize,
        QuantizationLevel = m.QuantizationLevel,
        Size = m.Size,
        ModifiedAt = m.ModifiedAt,
        Capabilities = m.Capabilities,
        ContextLength = m.ContextLength,
        Loaded = m.Loaded,
    };
}

public sealed class PullRequest
{
    public string? Model { get; set; }
}

public sealed class PullProgressEvent
{
    public required string Type { get; set; }
    public string? Status { get; set; }
    public string? Digest { get; set; }
    public long? Total { get; set; }
    public long? Completed { get; set; }
    public InferenceError? Error { get; set; }
}

/// <summary><c>/models/</c>: what the model server can run, one model, and pulling a model with progress.</summary>
public static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/models").WithTags("Models");
        group.MapGet("/", ListAsync).WithName("ListModels");
        group.MapPost("/pull", PullAsync).WithName("PullModel");
        // Catch-all: tags may hold a namespace ("library/mistral:7b").
        group.MapGet("/{**name}", GetAsync).WithName("GetModel");
        return group;
    }

    public static async Task<IResult> ListAsync(ModelManager models, Microsoft.Extensions.Options.IOptions<OllamaOptions> ollama, CancellationToken ct)
    {
        var snapshot = await models.GetSnapshotAsync(ct);
        var response = new ModelsResponse
        {
            ModelServer = snapshot.Server.Kind,
            DefaultModel = models.ResolveAlias(models.DefaultModel),
            DefaultNumCtx = ollama.Value.DefaultNumCtx,
            Models = snapshot.Models.Select(ModelDto.From).ToList(),
        };
        return TypedResults.Json(response, LabJsonContext.Wire.ModelsResponse);
    }

    public static async Task<IResult> GetAsync(string name, ModelManager models, CancellationToken ct) =>
        TypedResults.Json(ModelDto.From(await models.ResolveAsync(name, ct)), LabJsonContext.Wire.ModelDto);

    /// <summary>Streams Ollama's pull progress as NDJSON: <c>{"type":"progress",...}</c> lines, then <c>completed</c> or <c>error</c>.</summary>
    public static async Task<IResult> PullAsync(HttpContext context, ModelManager models)
    {
        var ct = context.RequestAborted;
        PullRequest? request;
        try
        {
            request = context.Request.HasJsonContentType()
                ? await context.Request.ReadFromJsonAsync(LabJsonContext.Default.PullRequest, ct)
                : null;
        }
        catch (JsonException ex)
        {
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_json", "The request body is not valid JSON",
                $"The JSON at '{ex.Path ?? "$"}' could not be read. Send {{\"model\": \"mistral7b\"}}.");
        }
        if (string.IsNullOrWhiteSpace(request?.Model))
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { ["model"] = ["'model' is required, e.g. {\"model\": \"mistral7b\"}."] },
                title: "Invalid pull request", extensions: new Dictionary<string, object?> { [Problems.CodeKey] = "validation_failed" });
        }

        await using var progress = models.PullAsync(request.Model, ct).GetAsyncEnumerator(ct);
        // As for inference: a failure before the first progress line is a ProblemDetails.
        var has = await progress.MoveNextAsync();
        context.Response.ContentType = InferenceApi.NdjsonContentType;
        var writer = new NdjsonWriter(context.Response.BodyWriter);
        try
        {
            while (has)
            {
                var p = progress.Current;
                await writer.WriteAsync(new PullProgressEvent
                {
                    Type = "progress", Status = p.Status, Digest = p.Digest, Total = p.Total, Completed = p.Completed,
                }, LabJsonContext.Wire.PullProgressEvent, ct);
                has = await progress.MoveNextAsync();
            }
            await writer.WriteAsync(new PullProgressEvent { Type = "completed", Status = "success" },
                LabJsonContext.Wire.PullProgressEvent, ct);
        }
        catch (OllamaException ex) when (!ct.IsCancellationRequested)
        {
            var error = LabExceptionHandler.TryMap(ex)!;
            await writer.WriteAsync(new PullProgressEvent
            {
                Type = "error",
                Error = new InferenceError { Code = error.Code, Message = error.Detail, Status = error.Status },
            }, LabJsonContext.Wire.PullProgressEvent, ct);
        }
        return Results.Empty;
    }
}
