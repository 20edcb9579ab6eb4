namespace AgentLab.AppHost.Hosting;

/// <summary>How to start one OS process for a resource.</summary>
public sealed record ProcessSpec(
    string FileName,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string> Environment,
    string? WorkingDirectory = null);
