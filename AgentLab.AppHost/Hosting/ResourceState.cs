namespace AgentLab.AppHost.Hosting;

/// <summary>Where a resource is in its life, as the status table and the dashboard show it.</summary>
public enum ResourceState
{
    /// <summary>Declared, waiting for its WaitFor dependencies to become ready.</summary>
    Waiting,
    /// <summary>Process started (or preparation running), not ready yet.</summary>
    Starting,
    /// <summary>Ready: its health check or readiness probe passed.</summary>
    Running,
    /// <summary>Was ready; its health check fails now while the process still runs.</summary>
    Unhealthy,
    /// <summary>Exited unexpectedly; waiting out the backoff before the next start.</summary>
    Restarting,
    /// <summary>Stopped by the AppHost.</summary>
    Exited,
    /// <summary>Could not be started or made ready; the message says why.</summary>
    Failed,
}

/// <summary>What sort of resource it is (the dashboard's "kind" column).</summary>
public enum ResourceKind
{
    /// <summary>One of our .NET services (<see cref="ProjectResource"/>).</summary>
    Project,
    /// <summary>Any other process (<see cref="ExecutableResource"/>).</summary>
    Executable,
    /// <summary>A server from an infrastructure recipe: PostgreSQL, Garnet (<see cref="InfrastructureResource"/>).</summary>
    Infrastructure,
    /// <summary>Runs elsewhere; known by its connection string, nothing to start or stop (<see cref="ExternalResource"/>).</summary>
    External,
}
