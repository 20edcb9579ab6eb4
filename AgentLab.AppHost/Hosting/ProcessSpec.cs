namespace AgentLab.AppHost.Hosting;

/// <summary>How to start one OS process for a resource.</summary>
/// <param name="StopSignal">What asks it to stop before the grace runs out and SIGKILL follows.</param>
public sealed record ProcessSpec(
    string FileName,
    IReadOnlyList<string> Arguments,
    IReadOnlyDictionary<string, string> Environment,
    string? WorkingDirectory = null,
    StopSignal StopSignal = StopSignal.Terminate);

/// <summary>The signal a graceful stop sends first.</summary>
public enum StopSignal
{
    /// <summary>SIGTERM: what most servers (and .NET's host) treat as "shut down cleanly".</summary>
    Terminate,

    /// <summary>
    /// SIGINT: PostgreSQL's "fast" shutdown (roll back, disconnect clients, checkpoint, exit). Its SIGTERM is the
    /// "smart" one, which waits for every client to leave: with the Backend still connected that is the whole grace
    /// and then a SIGKILL, which costs crash recovery on the next start.
    /// </summary>
    Interrupt,
}
