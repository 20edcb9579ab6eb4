using System.Text.Json;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>
/// A safe built-in tool the executor may call through Ollama tool calling. Implementations never throw for bad input
/// from the model (they answer <see cref="ToolResult"/> with <c>Ok = false</c> and a message the model can act on);
/// only cancellation throws.
/// </summary>
public interface ILabTool
{
    /// <summary>The name the model calls the tool by (snake_case, unique case-insensitively).</summary>
    string Name { get; }

    /// <summary>What the tool does, written for the model.</summary>
    string Description { get; }

    /// <summary>The JSON Schema of the arguments object, sent as Ollama's <c>tools[].function.parameters</c>.</summary>
    JsonElement ParametersSchema { get; }

    ValueTask<ToolResult> InvokeAsync(JsonElement arguments, CancellationToken ct);
}

/// <summary>What a tool call gives back to the model: the value, or (when <see cref="Ok"/> is false) a clear error.</summary>
public sealed record ToolResult(bool Ok, string Content)
{
    public static ToolResult Success(string content) => new(true, content);

    public static ToolResult Error(string message) => new(false, message);
}
