using System.Diagnostics;
using AgentLab.AppHost.Infrastructure;
using static AgentLab.Tests.AppHost.InfrastructureTestKit;

namespace AgentLab.Tests.AppHost;

/// <summary>The PostgreSQL recipe against the machine's real installation (as root here, so through setpriv).</summary>
public sealed class InfrastructurePostgresTests
{
    [Fact]
    public async Task PostgresRecipe_FreshFolder_InitializesStartsAndCreatesTheDatabase()
    {
        var scratch = ScratchFolder();
        try
        {
            var recipe = Recipe(Path.Combine(scratch, "postgres"), FreePort());

            var clock = Stopwatch.StartNew();
            await recipe.PrepareAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
            var initialized = clock.Elapsed;
            await using var server = InfrastructureProcess.Start(recipe.CreateProcessSpec());
            await server.WaitReadyAsync(recipe, Ct);
            await recipe.AfterReadyAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
            Log($"first start: initdb {initialized.TotalSeconds:0.00} s, ready with the database {clock.Elapsed.TotalSeconds:0.00} s");

            Assert.True(recipe.Initialized);
            Assert.True(File.Exists(Path.Combine(recipe.DataDirectory, "PG_VERSION")));
            Assert.Equal("agentlabdb", await QueryAsync(recipe.ConnectionString, "SELECT current_database()"));
            Assert.Equal(recipe.ConnectionString, recipe.ExportedEnvironment["ConnectionStrings__agentlabdb"]);
            Assert.Contains(recipe.Notices, n => n.Contains("created the database 'agentlabdb'", StringComparison.Ordinal));
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    public async Task PostgresRecipe_RestartOnTheSameFolder_KeepsTheDataWithoutASecondInitdb()
    {
        var scratch = ScratchFolder();
        try
        {
            var dataDirectory = Path.Combine(scratch, "postgres");
            var port = FreePort();
            var first = Recipe(dataDirectory, port);
            await first.PrepareAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
            await using (var server = InfrastructureProcess.Start(first.CreateProcessSpec()))
            {
                await server.WaitReadyAsync(first, Ct);
                await first.AfterReadyAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
                await QueryAsync(first.ConnectionString, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
            }

            var warm = Recipe(dataDirectory, port);
            var clock = Stopwatch.StartNew();
            await warm.PrepareAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
            await using var restarted = InfrastructureProcess.Start(warm.CreateProcessSpec());
            await restarted.WaitReadyAsync(warm, Ct);
            await warm.AfterReadyAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
            Log($"warm start: ready with the database {clock.Elapsed.TotalSeconds:0.00} s");

            Assert.False(warm.Initialized);
            Assert.Empty(warm.Notices);
            Assert.Equal("still here", await QueryAsync(warm.ConnectionString, "SELECT v FROM kept"));
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task PostgresRecipe_DataFolderBehindAPrivateParent_FallsBackToAReachableFolderAndSaysWhere()
    {
        if (!Environment.IsPrivilegedProcess)
            Assert.Skip("Only root runs PostgreSQL as another user, so only root can meet an unreachable folder.");
        var scratch = ScratchFolder();
        try
        {
            // A repo cloned under a 0700 home: root can write there, the postgres user cannot even pass through.
            var privateParent = Path.Combine(scratch, "home");
            Directory.CreateDirectory(privateParent);
            File.SetUnixFileMode(privateParent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var wanted = Path.Combine(privateParent, "repo", ".agentlab", "postgres");
            var fallbackRoot = Path.Combine(scratch, "vartmp");
            Directory.CreateDirectory(fallbackRoot);
            var recipe = new PostgresRecipe(new PostgresOptions
            {
                Port = FreePort(), DataDirectory = wanted, ThrowAway = true, FallbackRoot = fallbackRoot,
            }, scratch);

            await recipe.PrepareAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);

            Assert.StartsWith(fallbackRoot + Path.DirectorySeparatorChar, recipe.DataDirectory, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(recipe.DataDirectory, "PG_VERSION")));
            Assert.False(Directory.Exists(wanted));
            Assert.Contains(recipe.Notices, n => n.Contains(wanted, StringComparison.Ordinal) && n.Contains(recipe.DataDirectory, StringComparison.Ordinal));
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    public async Task PostgresRecipe_FolderWithOtherContent_RefusesAndSaysWhatToDo()
    {
        var scratch = ScratchFolder();
        try
        {
            var dataDirectory = Path.Combine(scratch, "postgres");
            Directory.CreateDirectory(dataDirectory);
            await File.WriteAllTextAsync(Path.Combine(dataDirectory, "notes.txt"), "mine", Ct);
            var recipe = Recipe(dataDirectory, FreePort());

            var error = await Assert.ThrowsAsync<InfrastructureException>(() => recipe.PrepareAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct));

            Assert.Contains("no PG_VERSION", error.Message, StringComparison.Ordinal);
            Assert.Contains("Postgres:DataDirectory", error.Message, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(dataDirectory, "notes.txt")));
        }
        finally
        {
            Delete(scratch);
        }
    }

    [Fact]
    public async Task PostgresInstallation_ConfiguredFolderWithoutTheServer_ThrowsNamingTheSetting()
    {
        var scratch = ScratchFolder();
        try
        {
            var error = await Assert.ThrowsAsync<InfrastructureException>(() => PostgresInstallation.FindAsync(scratch, Ct));

            Assert.Contains("Postgres:BinDirectory", error.Message, StringComparison.Ordinal);
            Assert.Contains(scratch, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Delete(scratch);
        }
    }

    private static PostgresRecipe Recipe(string dataDirectory, int port) =>
        new(new PostgresOptions { Port = port, DataDirectory = dataDirectory, ThrowAway = true }, RepoRoot());

    /// <summary>Runs SQL through psql with the exported connection string's host, port, database and user.</summary>
    private static async Task<string> QueryAsync(string connectionString, string sql)
    {
        var parts = connectionString.Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var psql = Path.Combine(await PostgresInstallation.FindAsync(null, Ct), "psql");
        var info = new ProcessStartInfo(psql) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", parts["Host"], "-p", parts["Port"],
                     "-U", parts["Username"], "-d", parts["Database"], "-c", sql })
            info.ArgumentList.Add(argument);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(InfrastructureProcess.Bound, Ct);
        Assert.True(process.ExitCode == 0, $"psql failed: {await stderr}");
        return (await stdout).Trim();
    }
}
