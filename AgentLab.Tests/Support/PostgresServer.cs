using AgentLab.AppHost.Infrastructure;
using AgentLab.Backend.Data;
using AgentLab.Tests.AppHost;
using Microsoft.EntityFrameworkCore;
using Npgsql;

[assembly: AssemblyFixture(typeof(AgentLab.Tests.Support.SharedPostgres))]

namespace AgentLab.Tests.Support;

/// <summary>
/// A real PostgreSQL server from the machine's installation, in a throw-away cluster on a free port (the AppHost's
/// own recipe, so tests start it the way the lab does). Most tests share one (<see cref="SharedPostgres"/>) and each
/// takes a fresh database cloned from a migrated template; a test that stops or pauses the server starts its own.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string TemplateName = "agentlab_template";
    private readonly string scratch;
    private readonly PostgresRecipe recipe;
    private InfrastructureProcess? process;
    private readonly SemaphoreSlim templateLock = new(1, 1);
    private bool templateReady;

    private PostgresServer(string scratch, PostgresRecipe recipe, int port)
    {
        this.scratch = scratch;
        this.recipe = recipe;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The server's PID (for SIGSTOP/SIGCONT); 0 when stopped.</summary>
    public int ProcessId => process?.Id ?? 0;

    /// <summary>A connection string to <paramref name="database"/> on this server.</summary>
    public string ConnectionString(string database = "agentlabdb") =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username=postgres;Timeout=5;Command Timeout=30";

    public static async Task<PostgresServer> StartAsync(CancellationToken ct)
    {
        var scratch = InfrastructureTestKit.ScratchFolder();
        var port = InfrastructureTestKit.FreePort();
        var recipe = new PostgresRecipe(new PostgresOptions
        {
            Port = port, DataDirectory = Path.Combine(scratch, "postgres"), ThrowAway = true,
        }, InfrastructureTestKit.RepoRoot());
        var server = new PostgresServer(scratch, recipe, port);
        try
        {
            await recipe.PrepareAsync(ct).WaitAsync(InfrastructureProcess.Bound, ct);
            await server.StartProcessAsync(ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the server cleanly (SIGTERM); <see cref="StartAgainAsync"/> brings it back with its data.</summary>
    public async Task StopAsync()
    {
        if (process is not null)
            await process.DisposeAsync();
        process = null;
        NpgsqlConnection.ClearAllPools();
    }

    public Task StartAgainAsync(CancellationToken ct) => StartProcessAsync(ct);

    /// <summary>
    /// A new, empty-of-rows database with the Backend's schema already applied (cloned from a template migrated once),
    /// dropped again on dispose.
    /// </summary>
    public async Task<TestDatabase> CreateDatabaseAsync(CancellationToken ct)
    {
        await EnsureTemplateAsync(ct);
        var name = "t_" + Guid.NewGuid().ToString("N")[..16];
        await ExecuteAsync("postgres", $"CREATE DATABASE {name} TEMPLATE {TemplateName}", ct);
        return new TestDatabase(this, name);
    }

    /// <summary>Runs one statement on <paramref name="database"/> with a fresh, unpooled connection.</summary>
    public async Task ExecuteAsync(string database, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(ConnectionString(database) + ";Pooling=false");
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private async Task EnsureTemplateAsync(CancellationToken ct)
    {
        await templateLock.WaitAsync(ct);
        try
        {
            if (templateReady)
                return;
            await ExecuteAsync("postgres", $"CREATE DATABASE {TemplateName}", ct);
            var options = new DbContextOptionsBuilder<AgentLabDb>()
                .UseNpgsql(ConnectionString(TemplateName) + ";Pooling=false", o => o.MigrationsHistoryTable(AgentLabDb.MigrationsHistoryTable))
                .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning))
                .Options;
            await using (var db = new AgentLabDb(options))
                await db.Database.MigrateAsync(ct);
            templateReady = true;
        }
        finally
        {
            templateLock.Release();
        }
    }

    private async Task StartProcessAsync(CancellationToken ct)
    {
        process = InfrastructureProcess.Start(recipe.CreateProcessSpec());
        await process.WaitReadyAsync(recipe, ct);
        await recipe.AfterReadyAsync(ct).WaitAsync(InfrastructureProcess.Bound, ct);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        InfrastructureTestKit.Delete(scratch);
        templateLock.Dispose();
    }
}

/// <summary>One test's database on a <see cref="PostgresServer"/>; dropped (with any connections left) on dispose.</summary>
public sealed class TestDatabase(PostgresServer server, string name) : IAsyncDisposable
{
    public string Name => name;

    public string ConnectionString => server.ConnectionString(name);

    public Task ExecuteAsync(string sql, CancellationToken ct) => server.ExecuteAsync(name, sql, ct);

    /// <summary>A context on this database, for arranging rows and asserting on them.</summary>
    public AgentLabDb CreateContext() => new(new DbContextOptionsBuilder<AgentLabDb>()
        .UseNpgsql(ConnectionString, o => o.MigrationsHistoryTable(AgentLabDb.MigrationsHistoryTable))
        .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning))
        .Options);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await server.ExecuteAsync("postgres", $"DROP DATABASE IF EXISTS {name} WITH (FORCE)", CancellationToken.None);
        }
        catch (NpgsqlException)
        {
            // The server is already gone (a test stopped it); its folder is deleted with it.
        }
    }
}

/// <summary>The one PostgreSQL server the test assembly shares, started on first use and stopped after the last test.</summary>
public sealed class SharedPostgres : IAsyncDisposable
{
    private static readonly Lazy<Task<PostgresServer>> server = new(() => PostgresServer.StartAsync(CancellationToken.None));

    /// <summary>The shared server, starting it if no test has yet.</summary>
    public static Task<PostgresServer> GetAsync() => server.Value;

    /// <summary>A fresh migrated database on the shared server.</summary>
    public static async Task<TestDatabase> CreateDatabaseAsync(CancellationToken ct) =>
        await (await GetAsync().WaitAsync(InfrastructureProcess.Bound, ct)).CreateDatabaseAsync(ct);

    public async ValueTask DisposeAsync()
    {
        if (server.IsValueCreated && server.Value.IsCompletedSuccessfully)
            await server.Value.Result.DisposeAsync();
    }
}
