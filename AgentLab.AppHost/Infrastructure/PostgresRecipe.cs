using System.Security.Cryptography;
using System.Text;
using AgentLab.AppHost.Hosting;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>
/// PostgreSQL from the local installation: a cluster in a data folder kept across runs (initdb on first use only),
/// the server on 127.0.0.1, the database created once it answers. As root it runs initdb and the server as the
/// <c>postgres</c> user through <c>setpriv</c>, which execs, so the PID the runner holds is the server's.
/// </summary>
public sealed class PostgresRecipe(PostgresOptions options, string repoRoot) : IInfrastructureRecipe
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    private readonly List<string> notices = [];
    private string? binDirectory;
    private string? setpriv;

    public string Name => "postgres";

    public string Endpoint => $"tcp://127.0.0.1:{options.Port}";

    public IReadOnlyList<string> Notices => notices;

    /// <summary>The data folder actually used: the configured one, or the fallback when the configured one is unreachable.</summary>
    public string DataDirectory { get; private set; } = Path.GetFullPath(options.DataDirectory, repoRoot);

    /// <summary>Whether the last <see cref="PrepareAsync"/> ran initdb (false when the folder already held a cluster).</summary>
    public bool Initialized { get; private set; }

    /// <summary>The Npgsql connection string dependents get.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={options.Port};Database={options.Database};Username=postgres";

    public IReadOnlyDictionary<string, string> ExportedEnvironment =>
        new Dictionary<string, string> { [$"ConnectionStrings__{options.Database}"] = ConnectionString };

    // PostgreSQL refuses to run as root; on a developer laptop the AppHost already runs as an ordinary user.
    private bool RunAsServiceUser => !OperatingSystem.IsWindows() && Environment.IsPrivilegedProcess;

    public async Task PrepareAsync(CancellationToken ct)
    {
        binDirectory = await PostgresInstallation.FindAsync(options.BinDirectory, ct);
        if (RunAsServiceUser)
        {
            setpriv = CommandRunner.FindOnPath("setpriv") ?? throw new InfrastructureException(
                "PostgreSQL: the AppHost runs as root, and PostgreSQL must run as another user, but `setpriv` (util-linux) " +
                "is not on PATH. Install util-linux, run the AppHost as an ordinary user, or set ConnectionStrings:agentlabdb.");
            if (!await UserExistsAsync(ct))
            {
                throw new InfrastructureException(
                    $"PostgreSQL: the AppHost runs as root, and PostgreSQL must run as the '{options.ServiceUser}' user, which does not " +
                    $"exist. Create it (`useradd --system {options.ServiceUser}`; installing the postgresql package does), run the " +
                    "AppHost as an ordinary user, or set ConnectionStrings:agentlabdb.");
            }
            DataDirectory = await ReachableDataDirectoryAsync(ct);
        }
        else
        {
            Directory.CreateDirectory(DataDirectory);
        }

        if (File.Exists(Path.Combine(DataDirectory, "PG_VERSION")))
        {
            Initialized = false;
            return;
        }
        if (Directory.EnumerateFileSystemEntries(DataDirectory).Any())
        {
            throw new InfrastructureException(
                $"PostgreSQL: the data folder {DataDirectory} is not empty but holds no cluster (no PG_VERSION). Move its " +
                $"content away, or set {PostgresOptions.Section}:{nameof(PostgresOptions.DataDirectory)} to another folder.");
        }

        List<string> initdb = ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale"];
        if (options.ThrowAway)
            initdb.Add("--no-sync");
        var result = await RunToolAsync("initdb", initdb, ct);
        if (!result.Succeeded)
        {
            throw new InfrastructureException(
                $"PostgreSQL: initdb failed in {DataDirectory} (exit {result.ExitCode}). Its output ends with:{Environment.NewLine}" +
                $"{result.Tail()}{Environment.NewLine}Fix the cause above, or delete the folder to start over.");
        }
        Initialized = true;
        notices.Add($"PostgreSQL: initialised a new cluster in {DataDirectory} (kept across runs; delete the folder to start over).");
    }

    public ProcessSpec CreateProcessSpec()
    {
        if (binDirectory is null)
            throw new InvalidOperationException("Call PrepareAsync before CreateProcessSpec.");

        List<string> server = ["-D", DataDirectory, "-p", options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // The socket goes in the data folder (not /var/run/postgresql, which may not exist or be writable);
            // a socket path past the 107-byte Unix limit would stop the server, so then it listens on TCP only.
            "-k", Path.Combine(DataDirectory, $".s.PGSQL.{options.Port}").Length < 100 ? DataDirectory : "",
            "-c", "listen_addresses=127.0.0.1"];
        if (options.ThrowAway)
            server.AddRange(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);

        var (fileName, arguments) = AsServiceUser(Path.Combine(binDirectory, "postgres"), server);
        // SIGINT is PostgreSQL's fast shutdown; its SIGTERM waits for every client (see StopSignal.Interrupt).
        return new ProcessSpec(fileName, arguments, new Dictionary<string, string>(), DataDirectory, StopSignal.Interrupt);
    }

    public async Task<bool> IsReadyAsync(CancellationToken ct)
    {
        var result = await CommandRunner.TryRunAsync(Tool("pg_isready"),
            ["-h", "127.0.0.1", "-p", Port, "-U", "postgres", "-d", "postgres", "-t", "1"], ProbeTimeout, ct);
        return result is { Succeeded: true };
    }

    public async Task AfterReadyAsync(CancellationToken ct)
    {
        // The name is validated by PostgresOptions' pattern, so it is safe inside the literal and the identifier.
        var exists = await PsqlAsync($"SELECT 1 FROM pg_database WHERE datname = '{options.Database}'", ct);
        if (exists.Output.Trim() == "1")
            return;
        var created = await PsqlAsync($"CREATE DATABASE \"{options.Database}\"", ct);
        // Two AppHosts racing on one cluster: the loser's "already exists" is the outcome it wanted.
        if (!created.Succeeded && !created.Output.Contains("already exists", StringComparison.Ordinal))
        {
            throw new InfrastructureException(
                $"PostgreSQL: could not create the database '{options.Database}' on port {options.Port} (exit {created.ExitCode}):" +
                $"{Environment.NewLine}{created.Tail()}");
        }
        notices.Add($"PostgreSQL: created the database '{options.Database}'.");
    }

    private string Port => options.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private async Task<CommandResult> PsqlAsync(string sql, CancellationToken ct)
    {
        var result = await CommandRunner.TryRunAsync(Tool("psql"),
            ["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", Port, "-U", "postgres", "-d", "postgres", "-c", sql],
            CommandTimeout, ct, environment: new Dictionary<string, string> { ["PGCONNECT_TIMEOUT"] = "5" });
        return result ?? throw new InfrastructureException($"PostgreSQL: {Tool("psql")} could not be started.");
    }

    private async Task<CommandResult> RunToolAsync(string tool, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var (fileName, args) = AsServiceUser(Tool(tool), arguments);
        // The service user's working directory must be one it can enter (root's may be /root, 0700).
        var result = await CommandRunner.TryRunAsync(fileName, args, CommandTimeout, ct, workingDirectory: Path.GetDirectoryName(DataDirectory));
        return result ?? throw new InfrastructureException($"PostgreSQL: {fileName} could not be started.");
    }

    private (string FileName, IReadOnlyList<string> Arguments) AsServiceUser(string program, IReadOnlyList<string> arguments)
    {
        if (setpriv is null)
            return (program, arguments);
        return (setpriv, [$"--reuid={options.ServiceUser}", $"--regid={options.ServiceUser}", "--init-groups", "--", program, .. arguments]);
    }

    private string Tool(string name) => Path.Combine(binDirectory ?? throw new InvalidOperationException("Call PrepareAsync first."), name);

    private async Task<bool> UserExistsAsync(CancellationToken ct)
    {
        var id = await CommandRunner.TryRunAsync("id", ["-u", options.ServiceUser], TimeSpan.FromSeconds(10), ct);
        return id is { Succeeded: true };
    }

    /// <summary>
    /// The configured folder when the service user can reach and write it after a chown, else a folder under
    /// <see cref="PostgresOptions.FallbackRoot"/> named after the configured path (so each checkout keeps its own).
    /// </summary>
    private async Task<string> ReachableDataDirectoryAsync(CancellationToken ct)
    {
        var wanted = DataDirectory;
        var existed = Directory.Exists(wanted);
        if (await TryClaimAsync(wanted, ct))
            return wanted;
        if (!existed && !Directory.EnumerateFileSystemEntries(wanted).Any())
            Directory.Delete(wanted);

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(wanted)))[..12];
        var parent = Path.Combine(options.FallbackRoot, $"agentlab-{hash}");
        var fallback = Path.Combine(parent, "postgres");
        if (!OperatingSystem.IsWindows())
            Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        if (await TryClaimAsync(fallback, ct))
        {
            notices.Add($"PostgreSQL: the '{options.ServiceUser}' user cannot reach {wanted} (a parent folder is not traversable, " +
                $"e.g. a 0700 home folder), so the cluster lives in {fallback} instead. Set " +
                $"{PostgresOptions.Section}:{nameof(PostgresOptions.DataDirectory)} to choose another place.");
            return fallback;
        }
        throw new InfrastructureException(
            $"PostgreSQL: the '{options.ServiceUser}' user can reach neither {wanted} nor {fallback}. Set " +
            $"{PostgresOptions.Section}:{nameof(PostgresOptions.DataDirectory)} to a folder whose parents are all traversable " +
            "(chmod o+x), or set ConnectionStrings:agentlabdb.");
    }

    private async Task<bool> TryClaimAsync(string directory, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        // Only the folder itself: an existing cluster inside already belongs to the service user.
        var chown = await CommandRunner.TryRunAsync("chown", [$"{options.ServiceUser}:", directory], TimeSpan.FromSeconds(10), ct);
        if (chown is not { Succeeded: true })
            return false;
        // access(2) as the service user checks search permission on every parent as well as write on the folder.
        var (fileName, args) = AsServiceUser("test", ["-w", directory, "-a", "-x", directory]);
        var probe = await CommandRunner.TryRunAsync(fileName, args, TimeSpan.FromSeconds(10), ct, workingDirectory: "/");
        return probe is { Succeeded: true };
    }
}
