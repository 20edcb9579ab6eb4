namespace AgentLab.Backend.Data;

/// <summary>
/// Thrown by <see cref="DatabaseHealth.ThrowIfUnavailable"/> when the database is known to be down or its schema is
/// not ready, so that a request fails at once (503 <c>db_unavailable</c>) instead of waiting for a timeout.
/// </summary>
public sealed class DatabaseUnavailableException : Exception
{
    public DatabaseUnavailableException(string reason, DateTimeOffset? since = null, string? cause = null)
        : base(reason)
    {
        Reason = reason;
        Since = since;
        Cause = cause ?? reason;
    }

    /// <summary>What is wrong, in words fit for a problem detail (never a connection string).</summary>
    public string Reason { get; }

    /// <summary>The cause in a few words (<c>ConnectionRefused: Connection refused</c>), for composing messages.</summary>
    public string Cause { get; }

    /// <summary>When the outage began, when known.</summary>
    public DateTimeOffset? Since { get; }
}
