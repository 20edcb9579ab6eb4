using System.ComponentModel.DataAnnotations;

namespace AgentLab.Backend.Executions;

/// <summary>How orchestrator executions survive a LabService crash (section <c>Orchestrator</c>).</summary>
public sealed class OrchestratorOptions
{
    public const string Section = "Orchestrator";

    /// <summary>
    /// How many times a run whose LabService stream broke is continued (with the completed nodes as
    /// <c>previous_nodes</c>) before it fails with <c>lab_unavailable</c>.
    /// </summary>
    [Range(0, 100)]
    public int ResumeAttempts { get; set; } = 6;

    /// <summary>The wait before the first continuation, in seconds; each next wait is 1.5 times longer, up to <see cref="MaxResumeDelaySeconds"/>.</summary>
    [Range(0, 60)]
    public double ResumeDelaySeconds { get; set; } = 1;

    [Range(0, 300)]
    public double MaxResumeDelaySeconds { get; set; } = 2;

    /// <summary>Largest <c>max_steps</c> a custom graph may be registered with (LabService's default, 20, when it sets none).</summary>
    [Range(1, 1000)]
    public int MaxStepsLimit { get; set; } = 50;
}
