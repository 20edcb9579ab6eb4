namespace AgentLab.AppHost.Infrastructure;

/// <summary>
/// A prerequisite is missing or broken (no PostgreSQL installation, a failed tool restore, an unusable data folder).
/// The message is meant to be printed as is: it says what failed, why, and what to do.
/// </summary>
public sealed class InfrastructureException : Exception
{
    public InfrastructureException(string message) : base(message) { }

    public InfrastructureException(string message, Exception inner) : base(message, inner) { }
}
