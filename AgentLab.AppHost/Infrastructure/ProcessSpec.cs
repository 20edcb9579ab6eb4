namespace AgentLab.AppHost.Hosting;

// The shared contract of issue 3 (apphost-common.md). Declared here only because the runner's copy
// (AgentLab.AppHost/Hosting/) was not in this branch yet: the integrator keeps exactly one of the two.

/// <summary>How to start one OS process for a resource.</summary>
public sealed record ProcessSpec(
    string FileName,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string> Environment,
    string? WorkingDirectory = null);
