namespace AgentLab.AppHost.Infrastructure;

/// <summary>Finds the PostgreSQL server binaries on this machine.</summary>
public static class PostgresInstallation
{
    private static readonly string[] Required = ["initdb", "postgres", "pg_isready", "psql"];

    /// <summary>
    /// The bin folder: <paramref name="configured"/> when given, else the newest <c>/usr/lib/postgresql/*/bin</c>
    /// (Debian/Ubuntu), else <c>pg_config --bindir</c>. Throws <see cref="InfrastructureException"/> saying what to
    /// install or configure when none has the server programs.
    /// </summary>
    public static async Task<string> FindAsync(string? configured, CancellationToken ct)
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return HasServer(configured) ? configured : throw new InfrastructureException(
                $"PostgreSQL: {PostgresOptions.Section}:{nameof(PostgresOptions.BinDirectory)} is '{configured}', but it does not " +
                $"hold {string.Join(", ", Required)}. Point it at the folder that does, or remove it to search automatically.");
        }

        // Debian keeps every major version side by side; the newest is what `apt-get install postgresql` just gave.
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var newest = Directory.GetDirectories(debianRoot)
                .Select(dir => (Dir: Path.Combine(dir, "bin"), Version: Version.TryParse(NormaliseVersion(Path.GetFileName(dir)), out var v) ? v : null))
                .Where(x => x.Version is not null && HasServer(x.Dir))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault();
            if (newest is not null)
                return newest;
        }

        var pgConfig = await CommandRunner.TryRunAsync("pg_config", ["--bindir"], TimeSpan.FromSeconds(10), ct);
        if (pgConfig is { Succeeded: true } && pgConfig.Output.Trim() is { Length: > 0 } bindir && HasServer(bindir))
            return bindir;

        throw new InfrastructureException(
            "PostgreSQL is not installed: no server programs (initdb, postgres) in /usr/lib/postgresql/*/bin or in " +
            "`pg_config --bindir`. Install it (Debian/Ubuntu: `sudo apt-get install postgresql`; macOS: `brew install " +
            $"postgresql`), or set {PostgresOptions.Section}:{nameof(PostgresOptions.BinDirectory)} to its bin folder, " +
            "or use a database you already have by setting ConnectionStrings:agentlabdb " +
            "(env ConnectionStrings__agentlabdb=\"Host=...;Port=5432;Database=agentlabdb;Username=...;Password=...\").");
    }

    private static bool HasServer(string dir) =>
        Required.All(name => File.Exists(Path.Combine(dir, name)) || File.Exists(Path.Combine(dir, name + ".exe")));

    // "15" is not a System.Version; "15.0" is.
    private static string NormaliseVersion(string name) => name.Contains('.') ? name : name + ".0";
}
