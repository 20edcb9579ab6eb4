using System.Diagnostics;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Runs one execution. The HTTP handler only reads, validates and answers; this is where persistence (create the
/// row, record the node states) and the async path (queue, run in the background) will slot in.
/// </summary>
public sealed class ExecutionRunner(
    LabServiceClient lab,
    IOptions<LabServiceOptions> labOptions,
    TimeProvider time,
    ILogger<ExecutionRunner> logger)
{
    private const string InferenceNode = "inference";

    /// <summary>Runs a validated <c>simple</c> request: one model call through LabService.</summary>
    public async Task<ExecutionResult> RunSimpleAsync(ExecutionRequest request, CancellationToken ct)
    {
        var executionId = Guid.CreateVersion7();
        var createdAt = time.GetUtcNow();
        var started = time.GetTimestamp();

        // Travels as baggage to LabService and from there to every model call, and tags this request's span.
        AgentLabExecution.SetCurrentId(executionId);

        var inference = ToInferenceRequest(request);
        InferenceResponse answer;
        try
        {
            answer = await lab.InferAsync(inference, TimeoutFor(request), ct).ConfigureAwait(false);
        }
        catch (LabServiceException ex)
        {
            ex.ExecutionId ??= executionId;
            throw;
        }

        var endedAt = time.GetUtcNow();
        var durationMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3);
        var m = answer.Metrics;
        var result = new ExecutionResult
        {
            ExecutionId = executionId,
            Status = "completed",
            ExecutionType = ExecutionKinds.Simple,
            Model = answer.Model,
            ModelServer = answer.ModelServer,
            Output = answer.Output,
            Flow = new FlowState
            {
                Nodes =
                [
                    new NodeState
                    {
                        Name = InferenceNode,
                        Status = "completed",
                        Attempt = 1,
                        StartedAt = createdAt,
                        EndedAt = endedAt,
                        DurationMs = durationMs,
                        Output = answer.Output,
                        Metrics = m,
                    },
                ],
                Edges = [],
                Iterations = 1,
            },
            Metrics = new ExecutionMetrics
            {
                TotalDurationMs = durationMs,
                TimeToFirstTokenMs = m?.TimeToFirstTokenMs,
                LoadDurationMs = m?.LoadDurationMs,
                PromptTokens = m?.PromptTokens,
                CompletionTokens = m?.CompletionTokens,
                TokensPerSecond = m?.TokensPerSecond,
                ModelCalls = 1,
            },
            CreatedAt = createdAt,
            CompletedAt = endedAt,
        };

        // The one Information line per execution; no prompt or output text.
        logger.ExecutionCompleted(executionId, ExecutionKinds.Simple, answer.Model ?? "(default)",
            answer.ModelServer ?? "unknown", durationMs, m?.PromptTokens ?? 0, m?.CompletionTokens ?? 0);
        return result;
    }

    private TimeSpan TimeoutFor(ExecutionRequest request)
    {
        var options = labOptions.Value;
        return request.Parameters?.TimeoutSeconds is { } seconds
            ? TimeSpan.FromSeconds(seconds + options.TimeoutGraceSeconds)
            : TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
    }

    private static InferenceRequest ToInferenceRequest(ExecutionRequest request)
    {
        var p = request.Parameters;
        return new InferenceRequest
        {
            Prompt = request.Prompt!,
            Model = string.IsNullOrWhiteSpace(request.Model) ? null : request.Model.Trim(),
            System = p?.System,
            Parameters = p is null ? null : new InferenceParameters
            {
                Temperature = p.Temperature,
                MaxTokens = p.MaxTokens,
                NumCtx = p.NumCtx,
                Seed = p.Seed,
                TopP = p.TopP,
                TimeoutSeconds = p.TimeoutSeconds,
            },
        };
    }
}
