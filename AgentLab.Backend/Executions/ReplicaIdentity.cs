namespace AgentLab.Backend.Executions;

/// <summary>
/// This Backend process's name in execution leases: host, PID and a random suffix, so a restarted process (same host,
/// maybe the same PID in a container) never mistakes its predecessor's leases for its own.
/// </summary>
public sealed class ReplicaIdentity
{
    public string Id { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
}
