using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Executions;

/// <summary>What <c>POST /api/v1/execute</c> accepts and how executions are run and recovered (section <c>Execution</c>).</summary>
public sealed class ExecutionOptions
{
    public const string Section = "Execution";

    /// <summary>Longest prompt (and system prompt) in characters.</summary>
    [Range(1, 10_000_000)]
    public int MaxPromptLength { get; set; } = 32_000;

    /// <summary>
    /// Largest request body in bytes, on every endpoint (Kestrel's <c>MaxRequestBodySize</c> too); larger bodies get
    /// 413 <c>payload_too_large</c> before they are parsed.
    /// </summary>
    [Range(1024, 100 * 1024 * 1024)]
    public int MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest <c>parameters.max_tokens</c>; above it the request is 400 <c>validation_failed</c>.</summary>
    [Range(1, 1_000_000)]
    public int MaxTokensLimit { get; set; } = 8192;

    /// <summary>How long LabService's model list (context lengths, aliases) is reused for the prompt-length check.</summary>
    [Range(1, 86_400)]
    public int ModelCacheSeconds { get; set; } = 300;

    /// <summary>Bound of that lookup; a LabService slower than this leaves the request unchecked rather than waiting.</summary>
    [Range(0.1, 60)]
    public double ModelLookupTimeoutSeconds { get; set; } = 3;

    /// <summary>Async executions waiting to run on this replica; past this, submits get 429 <c>queue_full</c>.</summary>
    [Range(1, 100_000)]
    public int QueueCapacity { get; set; } = 100;

    /// <summary>Async executions this replica runs at once.</summary>
    [Range(1, 1000)]
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>The Retry-After of a 429 <c>queue_full</c>, in seconds.</summary>
    [Range(1, 3600)]
    public int QueueFullRetryAfterSeconds { get; set; } = 5;

    /// <summary>
    /// How long a replica's claim on an unfinished execution lasts without renewal. It is renewed every third of this;
    /// after a crash, another replica (or this one, restarted) takes the execution over once it lapses.
    /// </summary>
    [Range(1, 3600)]
    public double LeaseSeconds { get; set; } = 30;

    /// <summary>How often this replica looks for executions whose holder's lease lapsed.</summary>
    [Range(0.1, 3600)]
    public double SweepIntervalSeconds { get; set; } = 5;

    /// <summary>
    /// How many times an execution may be started; one whose replica died that many times is failed with
    /// <c>worker_lost</c> instead of being tried again.
    /// </summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 3;
}
