using System.ComponentModel.DataAnnotations;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>How the AppHost runs its own PostgreSQL (used only when <c>ConnectionStrings:agentlabdb</c> is not set).</summary>
public sealed class PostgresOptions
{
    public const string Section = "Postgres";

    /// <summary>The TCP port on 127.0.0.1.</summary>
    [Range(1, 65535)] public int Port { get; set; } = 5432;

    /// <summary>
    /// The cluster's folder; kept across runs. Relative paths are taken from the repository root; the default is
    /// <see cref="DefaultDataDirectory"/>. When running as root and the postgres user cannot reach it, a folder under
    /// <see cref="FallbackRoot"/> is used instead (and announced).
    /// </summary>
    public string DataDirectory { get; set; } = DefaultDataDirectory;

    public const string DefaultDataDirectory = ".agentlab/postgres";

    /// <summary>The database created after the server is ready.</summary>
    [RegularExpression("^[a-z_][a-z0-9_]{0,62}$")] public string Database { get; set; } = "agentlabdb";

    /// <summary>
    /// A disposable cluster (tests): initdb without fsync and the server with fsync, synchronous_commit and
    /// full_page_writes off. Never for data you want to keep: a crash can corrupt it.
    /// </summary>
    public bool ThrowAway { get; set; }

    /// <summary>The folder holding initdb, postgres, pg_isready and psql; found automatically when null.</summary>
    public string? BinDirectory { get; set; }

    /// <summary>The OS user that runs initdb and the server when the AppHost runs as root (PostgreSQL refuses root).</summary>
    public string ServiceUser { get; set; } = "postgres";

    /// <summary>Where a reachable data folder is made when the configured one is not reachable by <see cref="ServiceUser"/>.</summary>
    public string FallbackRoot { get; set; } = "/var/tmp";
}
