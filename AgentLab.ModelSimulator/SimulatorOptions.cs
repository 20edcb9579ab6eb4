using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace AgentLab.ModelSimulator;

/// <summary>
/// Settings of the Ollama-protocol simulator (section <c>Simulator</c>). Models and library entries given in
/// configuration are added to the defaults; an entry with the same name as a default replaces it.
/// </summary>
public sealed class SimulatorOptions
{
    public const string Section = "Simulator";

    /// <summary>What <c>/api/version</c> reports.</summary>
    [Required] public string Version { get; set; } = "0.12.6";

    /// <summary>Prompt evaluation time before the first token, reported as <c>prompt_eval_duration</c>.</summary>
    [Range(0, 600_000)] public int TimeToFirstTokenMs { get; set; } = 40;

    /// <summary>Time per generated token; <c>eval_duration</c> = <c>eval_count</c> × this.</summary>
    [Range(0, 60_000)] public int TokenLatencyMs { get; set; } = 15;

    /// <summary>Paid by the first request to a model that is not loaded, reported as <c>load_duration</c>.</summary>
    [Range(0, 600_000)] public int LoadDurationMs { get; set; } = 200;

    /// <summary>Requests in flight on chat/generate beyond which the server answers 503 (OLLAMA_MAX_QUEUE).</summary>
    [Range(1, 1_000_000)] public int MaxQueue { get; set; } = 512;

    /// <summary>Default keep-alive of a loaded model when the request sets none (OLLAMA_KEEP_ALIVE).</summary>
    [Required] public string DefaultKeepAlive { get; set; } = "5m";

    /// <summary>Context length a model is loaded with when the request sets no <c>options.num_ctx</c>.</summary>
    [Range(1, 10_000_000)] public int DefaultNumCtx { get; set; } = 4096;

    /// <summary>Pause between two progress lines of <c>/api/pull</c>.</summary>
    [Range(0, 60_000)] public int PullStepDelayMs { get; set; } = 20;

    /// <summary>Models installed locally (<c>/api/tags</c>).</summary>
    public List<SimulatedModel> Models { get; set; } =
    [
        new() { Name = "mistral:7b", Family = "llama", ParameterSize = "7.2B", QuantizationLevel = "Q4_K_M", Size = 4_372_824_384, ContextLength = 32768, Capabilities = ["completion", "tools"] },
        new() { Name = "llama3.2:latest", Family = "llama", ParameterSize = "3.2B", QuantizationLevel = "Q4_K_M", Size = 2_019_393_189, ContextLength = 131072, Capabilities = ["completion", "tools"] },
        new() { Name = "qwen3:4b", Family = "qwen3", ParameterSize = "4.0B", QuantizationLevel = "Q4_K_M", Size = 2_497_293_931, ContextLength = 40960, Capabilities = ["completion", "tools", "thinking"] },
        new() { Name = "phi3:mini", Family = "phi3", ParameterSize = "3.8B", QuantizationLevel = "Q4_0", Size = 2_176_178_913, ContextLength = 131072, Capabilities = ["completion"] },
        new() { Name = "nomic-embed-text:latest", Family = "nomic-bert", ParameterSize = "137M", QuantizationLevel = "F16", Size = 274_302_450, ContextLength = 2048, Capabilities = ["embedding"] },
    ];

    /// <summary>Models <c>/api/pull</c> can fetch; a pulled model joins <see cref="Models"/>.</summary>
    public List<SimulatedModel> Library { get; set; } =
    [
        new() { Name = "gemma3:1b", Family = "gemma3", ParameterSize = "999.89M", QuantizationLevel = "Q4_K_M", Size = 815_319_791, ContextLength = 32768, Capabilities = ["completion"] },
        new() { Name = "qwen2.5:0.5b", Family = "qwen2", ParameterSize = "494.03M", QuantizationLevel = "Q4_K_M", Size = 397_821_319, ContextLength = 32768, Capabilities = ["completion", "tools"] },
        new() { Name = "smollm2:135m", Family = "llama", ParameterSize = "134.52M", QuantizationLevel = "F16", Size = 270_898_672, ContextLength = 8192, Capabilities = ["completion", "tools"] },
    ];

    internal void CopyFrom(SimulatorOptions other)
    {
        Version = other.Version;
        TimeToFirstTokenMs = other.TimeToFirstTokenMs;
        TokenLatencyMs = other.TokenLatencyMs;
        LoadDurationMs = other.LoadDurationMs;
        MaxQueue = other.MaxQueue;
        DefaultKeepAlive = other.DefaultKeepAlive;
        DefaultNumCtx = other.DefaultNumCtx;
        PullStepDelayMs = other.PullStepDelayMs;
        Models = [.. other.Models];
        Library = [.. other.Library];
    }
}

/// <summary>One model the simulator serves or can pull.</summary>
public sealed class SimulatedModel
{
    [Required] public string Name { get; set; } = "";
    public string Family { get; set; } = "llama";
    public string ParameterSize { get; set; } = "7B";
    public string QuantizationLevel { get; set; } = "Q4_K_M";
    public long Size { get; set; } = 4_000_000_000;
    /// <summary>sha256 hex; derived from the name when empty.</summary>
    public string? Digest { get; set; }
    public int ContextLength { get; set; } = 8192;
    public List<string> Capabilities { get; set; } = ["completion"];
    public int? TimeToFirstTokenMs { get; set; }
    public int? TokenLatencyMs { get; set; }
    public int? LoadDurationMs { get; set; }
    /// <summary>A fault applied to every request for this model, as in the <c>X-Simulator-Fault</c> header.</summary>
    public string? Fault { get; set; }
}

/// <summary>Checks what data annotations cannot: model entries, fault syntax and the keep-alive default.</summary>
internal sealed class SimulatorOptionsValidator : IValidateOptions<SimulatorOptions>
{
    public ValidateOptionsResult Validate(string? name, SimulatorOptions options)
    {
        var errors = new List<string>();
        if (!KeepAlive.TryParse(options.DefaultKeepAlive, out _, out var keepAliveError))
            errors.Add($"Simulator:DefaultKeepAlive: {keepAliveError}");
        foreach (var model in options.Models.Concat(options.Library))
        {
            if (string.IsNullOrWhiteSpace(model.Name))
                errors.Add("Simulator:Models: every model needs a Name such as \"mistral:7b\".");
            else if (model.Fault is { Length: > 0 } fault && !Fault.TryParse(fault, out _, out var faultError))
                errors.Add($"Simulator model '{model.Name}': {faultError}");
            if (model.ContextLength <= 0 || model.Size <= 0)
                errors.Add($"Simulator model '{model.Name}': ContextLength and Size must be positive.");
            if (model.TimeToFirstTokenMs < 0 || model.TokenLatencyMs < 0 || model.LoadDurationMs < 0)
                errors.Add($"Simulator model '{model.Name}': latencies cannot be negative.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
