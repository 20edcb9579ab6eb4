using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using AgentLab.Backend.Executions;
using AgentLab.Backend.Health;
using AgentLab.Backend.Lab;

namespace AgentLab.Backend;

/// <summary>
/// Source-generated metadata for the Backend's public API (snake_case): no reflection on the hot path, and the
/// wire names do not depend on how the host's HTTP JSON options happen to be configured.
/// Reading is strict about types (a string is not a number) but not about the case of property names.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    PropertyNameCaseInsensitive = true,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(ExecutionRequest))]
[JsonSerializable(typeof(ExecutionResult))]
[JsonSerializable(typeof(StoredFlow))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(StatusReport))]
[JsonSerializable(typeof(DetailedHealthReport))]
[JsonSerializable(typeof(AgentLab.Backend.History.HistoryPage))]
[JsonSerializable(typeof(AgentLab.Backend.Metrics.MetricsReport))]
[JsonSerializable(typeof(AgentLab.Backend.Graphs.GraphList))]
[JsonSerializable(typeof(AgentLab.Backend.Graphs.GraphDetail))]
[JsonSerializable(typeof(AgentLab.Backend.Streams.StreamTicketResponse))]
public sealed partial class BackendJsonContext : JsonSerializerContext
{
    /// <summary>
    /// The same contract, writing non-ASCII text as UTF-8 rather than <c>\uXXXX</c> escapes, so a Spanish answer reads
    /// as Spanish in curl and in logs. Safe for an API: responses are JSON, never embedded in HTML.
    /// </summary>
    public static BackendJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        // Mirrors the attribute above.
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// Source-generated metadata for the LabService wire contract. Nulls are left out of requests so that LabService
/// applies its own defaults (model, temperature, ...).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InferenceRequest))]
[JsonSerializable(typeof(InferenceResponse))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(LabHealthReport))]
[JsonSerializable(typeof(InferenceMetrics))]
[JsonSerializable(typeof(AgentLab.Backend.Graphs.GraphValidation))]
[JsonSerializable(typeof(OrchestrateRequest))]
[JsonSerializable(typeof(OrchestrateEvent))]
[JsonSerializable(typeof(InferenceStreamEvent))]
[JsonSerializable(typeof(LabNodeRun))]
[JsonSerializable(typeof(LabFlow))]
[JsonSerializable(typeof(LabStopReason))]
[JsonSerializable(typeof(Dictionary<string, System.Text.Json.JsonElement>))]
public sealed partial class LabJsonContext : JsonSerializerContext;
