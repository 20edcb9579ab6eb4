namespace AgentLab.Backend.Events;

/// <summary>The Redis channel names the Backend replicas share.</summary>
public static class EventChannels
{
    /// <summary>Every event of one execution, in seq order (ARCHITECTURE.md): <c>agentlab:executions:{id}</c>.</summary>
    public static string ForExecution(Guid id) => $"agentlab:executions:{id}";

    /// <summary>Cancel requests: the payload is the execution id; the replica that drives the run stops it.</summary>
    public const string Cancel = "agentlab:cancel";
}
