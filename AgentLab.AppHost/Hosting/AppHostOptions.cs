using System.ComponentModel.DataAnnotations;

namespace AgentLab.AppHost.Hosting;

/// <summary>How the runner starts, watches and stops resources (configuration section <c>AppHost</c>).</summary>
public sealed class AppHostOptions
{
    public const string Section = "AppHost";

    /// <summary>Longest wait for one resource to become ready after its process started.</summary>
    [Range(1, 3600)] public int StartTimeoutSeconds { get; set; } = 60;

    /// <summary>Grace between SIGTERM and SIGKILL when stopping one resource.</summary>
    [Range(1, 300)] public int StopTimeoutSeconds { get; set; } = 10;

    /// <summary>First delay before restarting a resource that exited; doubles per consecutive crash.</summary>
    [Range(1, 600_000)] public int RestartDelayMilliseconds { get; set; } = 500;

    /// <summary>Cap of the restart delay.</summary>
    [Range(1, 3_600_000)] public int MaxRestartDelayMilliseconds { get; set; } = 30_000;

    /// <summary>Console lines kept per resource (for the dashboard).</summary>
    [Range(1, 1_000_000)] public int LogCapacity { get; set; } = 1000;

    /// <summary>How often a running resource's health check is repeated.</summary>
    [Range(1, 3600)] public int HealthCheckIntervalSeconds { get; set; } = 5;

    /// <summary>Echo every resource's output to the AppHost's console with a <c>[name]</c> prefix.</summary>
    public bool EchoOutput { get; set; } = true;

    /// <summary>Port per resource name (0 = any free port); <c>--Ports:backend=8000</c> on the command line wins.</summary>
    public Dictionary<string, int> Ports { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Extra environment per resource, applied last: <c>--AppHost:Environment:backend:Execution__MaxConcurrency=8</c>
    /// tunes one service without editing its appsettings.
    /// </summary>
    public Dictionary<string, Dictionary<string, string>> Environment { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}
