using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace AgentLab.ModelSimulator;

// Wire shapes of the Ollama REST API (see shared/reference/ollama-api.md). Field names are snake_case and follow
// api/types.go; Go's `omitempty` becomes WhenWritingNull (the default here) or WhenWritingDefault on metrics.

public sealed class ChatRequest
{
    public string? Model { get; set; }
    public List<ChatMessage>? Messages { get; set; }
    public List<ToolDefinition>? Tools { get; set; }
    public JsonElement? Format { get; set; }
    public RequestOptions? Options { get; set; }
    public bool? Stream { get; set; }
    public JsonElement? KeepAlive { get; set; }
    public JsonElement? Think { get; set; }
}

public sealed class GenerateRequest
{
    public string? Model { get; set; }
    public string? Prompt { get; set; }
    public string? System { get; set; }
    public string? Suffix { get; set; }
    public bool? Raw { get; set; }
    public JsonElement? Format { get; set; }
    public RequestOptions? Options { get; set; }
    public bool? Stream { get; set; }
    public JsonElement? KeepAlive { get; set; }
    public JsonElement? Think { get; set; }
}

/// <summary>The subset of Ollama's runtime options the simulator acts on; the rest are accepted and ignored.</summary>
public sealed class RequestOptions
{
    public long? Seed { get; set; }
    public int? NumPredict { get; set; }
    public int? NumCtx { get; set; }
    public double? Temperature { get; set; }
}

public sealed class ChatMessage
{
    public string Role { get; set; } = "";
    public string Content { get; set; } = "";
    public string? Thinking { get; set; }
    public List<string>? Images { get; set; }
    public List<ToolCall>? ToolCalls { get; set; }
    public string? ToolName { get; set; }
    public string? ToolCallId { get; set; }
}

public sealed class ToolDefinition
{
    public string Type { get; set; } = "function";
    public ToolFunctionDefinition? Function { get; set; }
}

public sealed class ToolFunctionDefinition
{
    public string Name { get; set; } = "";
    public string? Description { get; set; }
    public JsonElement? Parameters { get; set; }
}

public sealed class ToolCall
{
    public string? Id { get; set; }
    public ToolCallFunction Function { get; set; } = new();
}

public sealed class ToolCallFunction
{
    // Ollama always serialises the index, even 0.
    public int Index { get; set; }
    public string Name { get; set; } = "";
    public JsonElement Arguments { get; set; }
}

/// <summary>One line of a /api/chat stream, or the whole stream:false answer.</summary>
public sealed class ChatResponse : ResponseMetrics
{
    public string Model { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public ResponseMessage Message { get; set; } = new();
}

public sealed class ResponseMessage
{
    public string Role { get; set; } = "assistant";
    // content is always present on the wire, even when empty.
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string Content { get; set; } = "";
    public string? Thinking { get; set; }
    public List<ToolCall>? ToolCalls { get; set; }
}

/// <summary>One line of a /api/generate stream, or the whole stream:false answer.</summary>
public sealed class GenerateResponse : ResponseMetrics
{
    public string Model { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string Response { get; set; } = "";
    public string? Thinking { get; set; }
    public int[]? Context { get; set; }
}

/// <summary>The final-object fields shared by chat and generate; zero metrics are left out like Go's omitempty.</summary>
public abstract class ResponseMetrics
{
    [JsonPropertyOrder(10)] public bool Done { get; set; }
    [JsonPropertyOrder(11)] public string? DoneReason { get; set; }
    [JsonPropertyOrder(12), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long TotalDuration { get; set; }
    [JsonPropertyOrder(13), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long LoadDuration { get; set; }
    [JsonPropertyOrder(14), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int PromptEvalCount { get; set; }
    [JsonPropertyOrder(15), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long PromptEvalDuration { get; set; }
    [JsonPropertyOrder(16), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int EvalCount { get; set; }
    [JsonPropertyOrder(17), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long EvalDuration { get; set; }
}

public sealed class ErrorResponse
{
    public string Error { get; set; } = "";
}

public sealed class VersionResponse
{
    public string Version { get; set; } = "";
}

public sealed class ModelRequest
{
    public string? Model { get; set; }
    // Older clients send `name` instead of `model`.
    public string? Name { get; set; }
    public bool? Verbose { get; set; }
    public bool? Stream { get; set; }
    public bool? Insecure { get; set; }
}

public sealed class ModelDetails
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string ParentModel { get; set; } = "";
    public string Format { get; set; } = "gguf";
    public string Family { get; set; } = "";
    public List<string>? Families { get; set; }
    public string ParameterSize { get; set; } = "";
    public string QuantizationLevel { get; set; } = "";
}

public sealed class TagsResponse
{
    public List<TagModel> Models { get; set; } = [];
}

public sealed class TagModel
{
    public string Name { get; set; } = "";
    public string Model { get; set; } = "";
    public DateTime ModifiedAt { get; set; }
    public long Size { get; set; }
    public string Digest { get; set; } = "";
    public ModelDetails Details { get; set; } = new();
}

public sealed class PsResponse
{
    public List<PsModel> Models { get; set; } = [];
}

public sealed class PsModel
{
    public string Name { get; set; } = "";
    public string Model { get; set; } = "";
    public long Size { get; set; }
    public string Digest { get; set; } = "";
    public ModelDetails Details { get; set; } = new();
    public DateTime ExpiresAt { get; set; }
    public long SizeVram { get; set; }
    public int ContextLength { get; set; }
}

public sealed class ShowResponse
{
    public string Modelfile { get; set; } = "";
    public string Parameters { get; set; } = "";
    public string Template { get; set; } = "";
    public ModelDetails Details { get; set; } = new();
    public Dictionary<string, JsonElement> ModelInfo { get; set; } = [];
    public List<string> Capabilities { get; set; } = [];
    public DateTime ModifiedAt { get; set; }
}

public sealed class ProgressResponse
{
    public string Status { get; set; } = "";
    public string? Digest { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Total { get; set; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Completed { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    // Go's encoding/json matches field names case-insensitively; so do we.
    PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(ChatRequest))]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(ModelRequest))]
[JsonSerializable(typeof(ChatResponse))]
[JsonSerializable(typeof(GenerateResponse))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(VersionResponse))]
[JsonSerializable(typeof(TagsResponse))]
[JsonSerializable(typeof(PsResponse))]
[JsonSerializable(typeof(ShowResponse))]
[JsonSerializable(typeof(ProgressResponse))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(long))]
public sealed partial class OllamaJsonContext : JsonSerializerContext
{
    /// <summary>
    /// Go's encoding/json writes non-ASCII text as UTF-8, not as \u escapes; clients that compare bytes (or people
    /// reading a stream) see the same here. The rest mirrors the attribute above.
    /// </summary>
    public static OllamaJsonContext Wire { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        PropertyNameCaseInsensitive = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
