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

    /// <summary>
    /// Seconds to open a connection (TCP, TLS negotiation, the PostgreSQL handshake). Npgsql also bounds its
    /// cancellation request by it, so it counts twice in the worst case below: keep it short.
    /// </summary>
    /// <remarks>
    /// Measured against a SIGSTOPped server (DatabaseOutageTests): a command on a pooled connection fails after
    /// <c>CommandTimeoutSeconds + 2 × ConnectTimeoutSeconds</c> with Npgsql's default <c>SSL Mode=Prefer</c> (its
    /// cancellation request waits one connect timeout for the TLS answer and another for the server to close it), or
    /// <c>CommandTimeoutSeconds + ConnectTimeoutSeconds</c> with <c>SSL Mode=Disable</c>; opening a new connection
    /// fails after <c>ConnectTimeoutSeconds</c>. The defaults (1 s, 3 s) keep one request at about 5 s at most.
    /// </remarks>
    [Range(1, 120)] public int ConnectTimeoutSeconds { get; set; } = 1;

    /// <summary>
    /// Seconds one command may run before it is cancelled: the longest a request waits on a server that accepts
    /// connections but does not answer (paused, overloaded), before the cancellation cost described above.
    /// </summary>
    [Range(1, 3600)] public int CommandTimeoutSeconds { get; set; } = 3;

    /// <summary>
    /// After a command timed out and its cancellation was delivered, how long Npgsql waits for the server to confirm
    /// it before dropping the connection (a paused server never takes the cancellation, so this is not added then).
    /// </summary>
    [Range(-1, 60_000)] public int CancellationTimeoutMilliseconds { get; set; } = 500;

    /// <summary>Seconds of idleness after which a pooled connection is checked with a keepalive (0: never).</summary>
    [Range(0, 3600)] public int KeepAliveSeconds { get; set; } = 10;

    /// <summary>
    /// How many times a command that failed fast and transiently (connection refused or broken, deadlock) is tried
    /// again. A command that timed out is never tried again: that would multiply the wait (see
    /// <see cref="AgentLabExecutionStrategy"/>).
    /// </summary>
    [Range(0, 10)] public int MaxRetryCount { get; set; } = 2;

    /// <summary>The largest pause between two tries, in milliseconds.</summary>
    [Range(10, 60_000)] public int MaxRetryDelayMilliseconds { get; set; } = 500;

    /// <summary>Largest number of pooled connections per Backend replica.</summary>
    [Range(1, 1000)] public int MaxPoolSize { get; set; } = 50;

    /// <summary>
    /// How many statements each pooled connection keeps prepared on the server (Npgsql's <c>Max Auto Prepare</c>; a
    /// statement is prepared after its 5th use). Recording an execution repeats the same ~12 statements every time;
    /// prepared, PostgreSQL skips parsing and planning them (measured: its CPU per sync execute fell from ~10 ms to
    /// ~5 ms together with <see cref="ResetConnectionOnReturn"/> off). 0 turns it off (e.g. behind a PgBouncer older
    /// than 1.21 in transaction mode, which cannot keep prepared statements).
    /// </summary>
    [Range(0, 1000)] public int MaxAutoPrepare { get; set; } = 32;

    /// <summary>
    /// Whether a connection returned to the pool is reset with <c>DISCARD ALL</c> (Npgsql's default). Off here: the
    /// Backend keeps no session state (its settings are <c>SET LOCAL</c>, its advisory lock has its own unpooled
    /// connection), and <c>DISCARD ALL</c> also throws away the plans PL/pgSQL cached for the metrics rollup trigger on
    /// <c>executions</c>, so every finished execution planned the rollup upsert again (the trigger took 3-8 ms instead
    /// of 0.6 ms).
    /// </summary>
    public bool ResetConnectionOnReturn { get; set; }

    /// <summary>How long one health probe (<c>SELECT 1</c> on a fresh connection) may take, in milliseconds.</summary>
    [Range(100, 60_000)] public int ProbeTimeoutMilliseconds { get; set; } = 2000;

    /// <summary>While the database is believed down, the pause between two probes, in milliseconds.</summary>
    [Range(100, 60_000)] public int ProbeIntervalMilliseconds { get; set; } = 1000;

    /// <summary>
    /// How long the Backend waits at start for the migration step's first attempt before it serves requests anyway
    /// (the step then goes on in the background, and executions are refused until it is done).
    /// </summary>
    [Range(0, 3600)] public int StartupWaitSeconds { get; set; } = 30;

    /// <summary>The <c>Retry-After</c> (seconds) sent with 503 <c>db_unavailable</c>.</summary>
    [Range(1, 3600)] public int RetryAfterSeconds { get; set; } = 5;

    /// <summary>The connection string with this section's limits applied on top of the configured one.</summary>
    public string BuildConnectionString(string? configured)
    {
        var builder = new NpgsqlConnectionStringBuilder(string.IsNullOrWhiteSpace(configured) ? DefaultConnectionString : configured)
        {
            Timeout = ConnectTimeoutSeconds,
            CommandTimeout = CommandTimeoutSeconds,
            MaxPoolSize = MaxPoolSize,
            // Without keepalives a connection to a server that vanished (host down, paused) stays "open" for minutes.
            KeepAlive = KeepAliveSeconds,
            CancellationTimeout = CancellationTimeoutMilliseconds,
            MaxAutoPrepare = MaxAutoPrepare,
            NoResetOnClose = !ResetConnectionOnReturn,
        };
        if (string.IsNullOrEmpty(builder.ApplicationName))
            builder.ApplicationName = "agentlab-backend";
        return builder.ConnectionString;
    }

    /// <summary>
    /// The connection string of the health probe: the same server, no pooling (a probe must open a new connection to
    /// prove that the server accepts them; a pooled one may be stale), and a connect timeout no longer than the probe's.
    /// </summary>
    public string BuildProbeConnectionString(string? configured)
    {
        var builder = new NpgsqlConnectionStringBuilder(BuildConnectionString(configured))
        {
            Pooling = false,
            Timeout = Math.Max(1, (int)Math.Ceiling(ProbeTimeoutMilliseconds / 1000.0)),
            CommandTimeout = Math.Max(1, (int)Math.Ceiling(ProbeTimeoutMilliseconds / 1000.0)),
            KeepAlive = 0,
        };
        builder.ApplicationName += "-probe";
        return builder.ConnectionString;
    }
}
