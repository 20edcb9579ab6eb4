using System.Diagnostics;
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;
using Npgsql;

namespace AgentLab.Bench;

/// <summary>
/// The benchmark's database: a fresh one on the server <c>--connection</c> names (dropped afterwards), or a throw-away
/// cluster started with the AppHost's PostgreSQL recipe (deleted afterwards).
/// </summary>
/// <remarks>
/// A benchmark may ask the throw-away server for extra settings (<c>name=value</c>, passed as <c>-c</c> after the
/// recipe's own): the recipe's defaults suit tests, not a run that writes gigabytes of WAL. A server named by
/// <c>--connection</c> keeps its own settings.
/// </remarks>
internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly string? adminConnection;
    private readonly string? database;
    private readonly ProcessLauncher? launcher;
    private readonly SupervisedProcess? process;
    private readonly string[] folders;

    private BenchDatabase(string connectionString, string? adminConnection, string? database, ProcessLauncher? launcher,
        SupervisedProcess? process, params string[] folders)
    {
        ConnectionString = connectionString;
        this.adminConnection = adminConnection;
        this.database = database;
        this.launcher = launcher;
        this.process = process;
        this.folders = folders;
    }

    public string ConnectionString { get; }

    public static async Task<BenchDatabase> StartAsync(string? connection, bool keep, IReadOnlyList<string> serverSettings,
        CancellationToken ct)
    {
        if (connection is not null)
        {
            var name = "agentlab_bench_" + Guid.NewGuid().ToString("N")[..8];
            await using (var admin = new NpgsqlConnection(connection))
            {
                await admin.OpenAsync(ct);
                await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", admin);
                await create.ExecuteNonQueryAsync(ct);
            }
            Console.WriteLine($"Using the server of --connection, in a new database {name} ({(keep ? "kept" : "dropped at the end")})" +
                (serverSettings.Count > 0 ? $"; with its own settings, not {string.Join(" ", serverSettings)}." : "."));
            return new BenchDatabase(Named(connection, name), connection, keep ? null : name, null, null);
        }

        var scratch = Path.Combine(Path.GetTempPath(), "agentlab-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(scratch);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(scratch, (UnixFileMode)0b111_101_101);   // 0755: the postgres user must reach the cluster
        var port = FreePort();
        var recipe = new PostgresRecipe(new PostgresOptions
        {
            Port = port, DataDirectory = Path.Combine(scratch, "postgres"), ThrowAway = true, Database = "agentlab_bench",
        }, scratch);
        await recipe.PrepareAsync(ct);
        var launcher = new ProcessLauncher();
        var spec = recipe.CreateProcessSpec();
        var process = launcher.Start(spec with { Arguments = [.. spec.Arguments, .. serverSettings.SelectMany(setting => new[] { "-c", setting })] },
            (_, _) => { });
        var clock = Stopwatch.StartNew();
        while (!await recipe.IsReadyAsync(ct))
        {
            if (process.Exited.IsCompleted || clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new InvalidOperationException($"PostgreSQL did not start in {recipe.DataDirectory}.");
            await Task.Delay(50, ct);
        }
        await recipe.AfterReadyAsync(ct);
        Console.WriteLine($"Started a throw-away PostgreSQL on port {port} ({recipe.DataDirectory}; fsync off" +
            $"{string.Concat(serverSettings.Select(setting => ", " + setting))}), stopped and deleted at the end.");
        // As root the recipe may have moved the cluster to a folder the postgres user can reach: delete that one too.
        return new BenchDatabase(recipe.ConnectionString, null, null, launcher, process, recipe.DataDirectory, scratch);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (adminConnection is not null && database is not null)
        {
            await using var admin = new NpgsqlConnection(adminConnection);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        if (process is not null)
            await process.StopAsync(TimeSpan.FromSeconds(10));
        process?.Dispose();
        launcher?.Dispose();
        foreach (var folder in folders.Where(Directory.Exists))
            Directory.Delete(folder, recursive: true);
    }

    private static string Named(string connection, string database) =>
        new NpgsqlConnectionStringBuilder(connection) { Database = database }.ConnectionString;

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
