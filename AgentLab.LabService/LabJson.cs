using System.Text.Json.Serialization;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;

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
public sealed partial class LabJsonContext : JsonSerializerContext;
