using System.ComponentModel.DataAnnotations;

namespace AgentLab.LabService;

/// <summary>LabService behaviour: default model, input limits, model cache and aliases.</summary>
public sealed class LabOptions
{
    public const string Section = "Lab";

    [Required(AllowEmptyStrings = false)] public string DefaultModel { get; set; } = "mistral7b";

    [Range(1, 10_000_000)] public int MaxPromptLength { get; set; } = 32_000;

    [Range(0, 3600)] public int ModelCacheSeconds { get; set; } = 30;

    /// <summary>Short names for Ollama tags; configuration adds or overrides (<c>Lab:Aliases:mymodel=llama3.2:latest</c>).</summary>
    public Dictionary<string, string> Aliases { get; set; } = new(StringComparer.OrdinalIgnoreCase)
    {
        ["mistral7b"] = "mistral:7b",
        ["llama3"] = "llama3.2:latest",
        ["qwen3"] = "qwen3:4b",
        ["phi3"] = "phi3:mini",
    };
}
