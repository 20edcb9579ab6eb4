using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;
using AgentLab.LabService.Orchestration;
using AgentLab.LabService.Orchestration.Runtime;

namespace AgentLab.LabService;

/// <summary>Source-generated JSON for LabService's own wire contract (snake_case, no reflection per request).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    // Strict on input: wrong types are a 400 naming the JSON path, numbers in strings are not accepted.
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(InferenceRequest))]
[JsonSerializable(typeof(InferenceResponse))]
[JsonSerializable(typeof(InferenceStartedEvent))]
[JsonSerializable(typeof(InferenceTokenEvent))]
[JsonSerializable(typeof(InferenceCompletedEvent))]
[JsonSerializable(typeof(InferenceErrorEvent))]
[JsonSerializable(typeof(ModelsResponse))]
[JsonSerializable(typeof(ModelDto))]
[JsonSerializable(typeof(PullRequest))]
[JsonSerializable(typeof(PullProgressEvent))]
[JsonSerializable(typeof(OrchestrateRequest))]
[JsonSerializable(typeof(OrchestrateResponse))]
[JsonSerializable(typeof(OrchestrateCompletedEvent))]
[JsonSerializable(typeof(OrchestrateErrorEvent))]
[JsonSerializable(typeof(NodeStartedEvent))]
[JsonSerializable(typeof(TokenEvent))]
[JsonSerializable(typeof(NodeCompletedEvent))]
[JsonSerializable(typeof(NodeFailedEvent))]
[JsonSerializable(typeof(LogEvent))]
[JsonSerializable(typeof(OrchestratorInfo))]
public sealed partial class LabJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The same contract, writing non-ASCII text as UTF-8 rather than <c>\uXXXX</c> escapes, so a Spanish answer reads
    /// as Spanish in curl and in logs. Safe for an API: responses are JSON, never embedded in HTML.
    /// </summary>
    public static LabJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        // Mirrors the attribute above.
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
