using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Backend.Executions;

/// <summary>Turns stored executions into the wire's <see cref="ExecutionResult"/> and stored failures into problems.</summary>
public static class ExecutionResults
{
    public static string Self(Guid id) => $"/api/v1/executions/{id}";

    public static ExecutionResult From(ExecutionRecord record, IReadOnlyList<NodeStateRecord> nodes)
    {
        var flow = record.Flow is null ? null : JsonSerializer.Deserialize(record.Flow, BackendJsonContext.Wire.StoredFlow);
        return new ExecutionResult
        {
            ExecutionId = record.Id,
            Status = record.Status,
            ExecutionType = record.ExecutionType,
            Model = record.Model,
            ModelServer = record.ModelServer,
            Output = record.Output,
            Flow = new FlowState
            {
                Nodes = nodes.Select(ToNode).ToList(),
                Edges = flow?.Edges ?? [],
                Iterations = flow?.Iterations ?? 0,
            },
            Metrics = new ExecutionMetrics
            {
                TotalDurationMs = record.DurationMs ?? 0,
                TimeToFirstTokenMs = record.TimeToFirstTokenMs,
                LoadDurationMs = record.LoadDurationMs,
                PromptTokens = record.PromptTokens,
                CompletionTokens = record.CompletionTokens,
                TokensPerSecond = record.TokensPerSecond,
                ModelCalls = record.ModelCalls,
            },
            Error = record.ErrorCode is { } code ? new ExecutionError { Code = code, Message = record.ErrorMessage ?? code } : null,
            CreatedAt = record.CreatedAt,
            StartedAt = record.StartedAt,
            CompletedAt = record.CompletedAt,
            Attempt = record.Attempt,
            Links = new Dictionary<string, string> { ["self"] = Self(record.Id) },
        };
    }

    /// <summary>The flow's edges and iterations, as stored in <c>executions.flow</c>.</summary>
    public static string FlowJson(List<FlowEdge> edges, int iterations) =>
        JsonSerializer.Serialize(new StoredFlow { Edges = edges, Iterations = iterations }, BackendJsonContext.Wire.StoredFlow);

    /// <summary>
    /// The problem a synchronous caller gets for an execution that ended without completing, when the original
    /// failure is not at hand (a replayed idempotent submit, or a run another replica finished).
    /// </summary>
    public static ProblemHttpResult ProblemFor(ExecutionRecord record)
    {
        var code = record.ErrorCode ?? record.Status;
        var status = code switch
        {
            "model_not_found" or "execution_not_found" => StatusCodes.Status404NotFound,
            "model_not_capable" or "model_rejected_request" or "validation_failed" => StatusCodes.Status422UnprocessableEntity,
            "model_unavailable" or "lab_unavailable" or "worker_lost" => StatusCodes.Status503ServiceUnavailable,
            "model_timeout" or "lab_timeout" => StatusCodes.Status504GatewayTimeout,
            "cancelled" or "client_disconnected" => StatusCodes.Status409Conflict,
            _ when record.Status == ExecutionStatus.TimedOut => StatusCodes.Status504GatewayTimeout,
            _ => StatusCodes.Status502BadGateway,
        };
        var detail = code == "cancelled"
            // A cancel request (POST .../cancel) stopped it while this caller waited: say so, and where the rest is.
            ? $"Execution {record.Id} was cancelled before it finished ({record.ErrorMessage ?? "no reason given"}). " +
              $"What it did until then is at {Self(record.Id)}."
            : record.ErrorMessage;
        return Problems.Create(status, code, $"The execution ended {record.Status}", detail,
            [new("execution_id", record.Id), new("status", record.Status)]);
    }

    private static NodeState ToNode(NodeStateRecord node) => new()
    {
        Name = node.Node,
        Status = node.Status,
        Attempt = node.Attempt,
        StartedAt = node.StartedAt,
        EndedAt = node.EndedAt,
        DurationMs = node.DurationMs,
        Output = node.Output,
        Metrics = node.Metrics is null ? null : JsonSerializer.Deserialize(node.Metrics, LabJsonContext.Default.InferenceMetrics),
        Error = node.ErrorCode is { } code ? new ExecutionError { Code = code, Message = node.ErrorMessage ?? code } : null,
    };
}

/// <summary>The part of the flow kept on the execution row (the nodes have their own table).</summary>
public sealed class StoredFlow
{
    public List<FlowEdge> Edges { get; init; } = [];
    public int Iterations { get; init; }
}
