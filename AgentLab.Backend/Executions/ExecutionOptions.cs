using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Executions;

/// <summary>Limits on what <c>POST /api/v1/execute</c> accepts (section <c>Execution</c>).</summary>
public sealed class ExecutionOptions
{
    public const string Section = "Execution";

    /// <summary>Longest prompt (and system prompt) in characters.</summary>
    [Range(1, 10_000_000)]
    public int MaxPromptLength { get; set; } = 32_000;

    /// <summary>Largest request body in bytes; larger bodies get 413 before they are parsed.</summary>
    [Range(1024, 100 * 1024 * 1024)]
    public int MaxRequestBodyBytes { get; set; } = 1024 * 1024;
}
