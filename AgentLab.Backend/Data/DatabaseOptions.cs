using System.ComponentModel.DataAnnotations;
using Npgsql;

namespace AgentLab.Backend.Data;

/// <summary>
/// How the Backend reaches PostgreSQL (section <c>Database</c>); the server itself comes from
/// <c>ConnectionStrings:agentlabdb</c>. The timeouts are deliberately short: Npgsql's defaults (15 s to connect, 30 s
/// per command) would make a request hang for half a minute when the database is down or paused.
/// </summary>
public sealed class DatabaseOptions
{
    public const string Section = "Database";
    public const string ConnectionStringName = "agentlabdb";

    /// <summary>Used when <c>ConnectionStrings:agentlabdb</c> is not set: a local server with the AppHost's defaults.</summary>
    public const string DefaultConnectionString = "Host=127.0.0.1;Port=5432;Database=agentlabdb;Username=postgres";

    /// <summary>Seconds to open a connection (TCP and the PostgreSQL handshake).</summary>
    [Range(1, 120)] public int ConnectTimeoutSeconds { get; set; } = 3;

    /// <summary>Seconds one command may run before it is cancelled.</summary>
    [Range(1, 3600)] public int CommandTimeoutSeconds { get; set; } = 5;

    /// <summary>How many times a command that failed transiently (connection lost, deadlock) is tried again.</summary>
    [Range(0, 10)] public int MaxRetryCount { get; set; } = 2;

    /// <summary>The largest pause between two tries, in milliseconds.</summary>
    [Range(10, 60_000)] public int MaxRetryDelayMilliseconds { get; set; } = 500;

    /// <summary>Largest number of pooled connections per Backend replica.</summary>
    [Range(1, 1000)] public int MaxPoolSize { get; set; } = 50;

    /// <summary>The connection string with this section's limits applied on top of the configured one.</summary>
    public string BuildConnectionString(string? configured)
    {
        var builder = new NpgsqlConnectionStringBuilder(string.IsNullOrWhiteSpace(configured) ? DefaultConnectionString : configured)
        {
            Timeout = ConnectTimeoutSeconds,
            CommandTimeout = CommandTimeoutSeconds,
            MaxPoolSize = MaxPoolSize,
            // Without keepalives a connection to a server that vanished (host down, paused) stays "open" for minutes.
            KeepAlive = 10,
            CancellationTimeout = 1000,
        };
        if (string.IsNullOrEmpty(builder.ApplicationName))
            builder.ApplicationName = "agentlab-backend";
        return builder.ConnectionString;
    }
}
