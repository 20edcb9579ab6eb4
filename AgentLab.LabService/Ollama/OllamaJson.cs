using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentLab.LabService.Ollama;

// Wire DTOs of Ollama's REST API (reference/ollama-api.md). Metric fields are omitempty on Ollama's side,
// so every one of them is nullable here.

/// <summary>A line of a streamed answer that may carry Ollama's <c>{"error":"..."}</c> instead of data.</summary>
public interface IOllamaStreamLine
{
    string? Error { get; }
}

public sealed class OllamaChatRequest
{
    public required string Model { get; set; }
    public required List<OllamaMessage> Messages { get; set; }
    public List<OllamaTool>? Tools { get; set; }
    public JsonElement? Format { get; set; }
    public required OllamaRequestOptions Options { get; set; }
    // Always true: streaming is what makes first-token and idle timeouts (and TTFT) possible.
    public bool Stream { get; set; } = true;
    public JsonElement? KeepAlive { get; set; }
}

public sealed class OllamaRequestOptions
{
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public int? TopK { get; set; }
    public long? Seed { get; set; }
    public int? NumPredict { get; set; }
    public int? NumCtx { get; set; }
    public float? FrequencyPenalty { get; set; }
    public float? PresencePenalty { get; set; }
    public List<string>? Stop { get; set; }
}

public sealed class OllamaMessage
{
    public required string Role { get; set; }
    // Ollama always has content, even empty.
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string Content { get; set; } = "";
    public string? Thinking { get; set; }
    public List<string>? Images { get; set; }
    public List<OllamaToolCall>? ToolCalls { get; set; }
    public string? ToolName { get; set; }
}

public sealed class OllamaToolCall
{
    public string? Id { get; set; }
    public required OllamaToolCallFunction Function { get; set; }
}

public sealed class OllamaToolCallFunction
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int Index { get; set; }
    public required string Name { get; set; }
    // A JSON object on Ollama's native API (a string only on /v1).
    public Dictionary<string, object?>? Arguments { get; set; }
}

public sealed class OllamaTool
{
    public string Type { get; set; } = "function";
    public required OllamaToolFunction Function { get; set; }
}

public sealed class OllamaToolFunction
{
    public required string Name { get; set; }
    public string? Description { get; set; }
    public JsonElement? Parameters { get; set; }
}

public sealed class OllamaChatChunk : IOllamaStreamLine
{
    public string? Model { get; set; }
    public string? CreatedAt { get; set; }
    public OllamaMessage? Message { get; set; }
    public bool Done { get; set; }
    public string? DoneReason { get; set; }
    public long? TotalDuration { get; set; }
    public long? LoadDuration { get; set; }
    public int? PromptEvalCount { get; set; }
    public long? PromptEvalDuration { get; set; }
    public int? EvalCount { get; set; }
    public long? EvalDuration { get; set; }
    public string? Error { get; set; }
}

public sealed class OllamaErrorResponse
{
    public string? Error { get; set; }
}

public sealed class OllamaVersionResponse
{
    public string? Version { get; set; }
}

/// <summary>What <c>GET /api/version</c> said, and whether the simulator (not real Ollama) answered.</summary>
public sealed record OllamaVersion(string Version, bool IsSimulator);

public sealed class OllamaModelDetails
{
    public string? ParentModel { get; set; }
    public string? Format { get; set; }
    public string? Family { get; set; }
    public List<string>? Families { get; set; }
    public string? ParameterSize { get; set; }
    public string? QuantizationLevel { get; set; }
}

public sealed class OllamaModelInfo
{
    public string Name { get; set; } = "";
    public string? Model { get; set; }
    // Kept as text: Ollama writes nanosecond fractions and local offsets; we pass it through unchanged.
    public string? ModifiedAt { get; set; }
    public long Size { get; set; }
    public string? Digest { get; set; }
    public OllamaModelDetails? Details { get; set; }
}

public sealed class OllamaTagsResponse
{
    public List<OllamaModelInfo> Models { get; set; } = [];
}

public sealed class OllamaRunningModel
{
    public string Name { get; set; } = "";
    public string? Model { get; set; }
    public long Size { get; set; }
    public string? Digest { get; set; }
    public OllamaModelDetails? Details { get; set; }
    public string? ExpiresAt { get; set; }
    public long SizeVram { get; set; }
    public int? ContextLength { get; set; }
}

public sealed class OllamaPsResponse
{
    public List<OllamaRunningModel> Models { get; set; } = [];
}

public sealed class OllamaShowRequest
{
    public required string Model { get; set; }
}

public sealed class OllamaShowResponse
{
    public string? Parameters { get; set; }
    public OllamaModelDetails? Details { get; set; }
    public Dictionary<string, JsonElement>? ModelInfo { get; set; }
    public List<string>? Capabilities { get; set; }

    /// <summary>The model's trained context length from <c>model_info["{arch}.context_length"]</c>, if present.</summary>
    public int? ContextLength
    {
        get
        {
            if (ModelInfo is null)
                return null;
            foreach (var (key, value) in ModelInfo)
            {
                if (key.EndsWith(".context_length", StringComparison.Ordinal) && value.ValueKind == JsonValueKind.Number
                    && value.TryGetInt32(out var length))
                    return length;
            }
            return null;
        }
    }
}

public sealed class OllamaPullRequest
{
    public required string Model { get; set; }
    public bool Stream { get; set; } = true;
}

public sealed class OllamaPullProgress : IOllamaStreamLine
{
    public string? Status { get; set; }
    public string? Digest { get; set; }
    public long? Total { get; set; }
    public long? Completed { get; set; }
    public string? Error { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OllamaChatRequest))]
[JsonSerializable(typeof(OllamaChatChunk))]
[JsonSerializable(typeof(OllamaErrorResponse))]
[JsonSerializable(typeof(OllamaVersionResponse))]
[JsonSerializable(typeof(OllamaTagsResponse))]
[JsonSerializable(typeof(OllamaPsResponse))]
[JsonSerializable(typeof(OllamaShowRequest))]
[JsonSerializable(typeof(OllamaShowResponse))]
[JsonSerializable(typeof(OllamaPullRequest))]
[JsonSerializable(typeof(OllamaPullProgress))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(float))]
[JsonSerializable(typeof(decimal))]
[JsonSerializable(typeof(List<object?>))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(bool))]
internal sealed partial class OllamaJsonContext : JsonSerializerContext;
