using System.Diagnostics;
using System.Net;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.DatabaseDown;

/// <summary>How the database goes away in a test.</summary>
public enum OutageKind
{
    /// <summary>The server is shut down (fast, as <c>pg_ctl stop</c>): open sessions end, new ones are refused.</summary>
    Stopped,

    /// <summary>Every server process is SIGSTOPped: connections are accepted by the kernel but nothing answers.</summary>
    Paused,
}

/// <summary>
/// The Backend on a private PostgreSQL server that each test stops or pauses: readiness and health say so at once
/// and name the database, commands fail as "unavailable" within their bound instead of hanging, and everything
/// recovers by itself when the server returns, without restarting the Backend.
/// </summary>
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    /// <summary>The most one request may take while the database is down (a hang fails the test).</summary>
    private static readonly TimeSpan RequestBound = TimeSpan.FromSeconds(10);

    /// <summary>How long the Backend may take to notice that the server is back.</summary>
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(30);

    private readonly List<BackendFactory> factories = [];
    private PostgresServer server = null!;
    private FakeLabService lab = null!;
    private ServerPause? pause;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        server = await PostgresServer.StartAsync(Ct);
        lab = await FakeLabService.StartAsync(Ct);
    }

    [Theory]
    [InlineData(OutageKind.Stopped)]
    [InlineData(OutageKind.Paused)]
    public async Task Ready_ServerDown_NotReadyNamingTheDatabaseThenReadyAgainByItself(OutageKind kind)
    {
        var database = await server.CreateDatabaseAsync(Ct);
        var client = Backend(database.ConnectionString).CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(client, "/api/v1/ready")).StatusCode);

        await BeginOutageAsync(kind);
        var clock = Stopwatch.StartNew();
        var ready = await GetAsync(client, "/api/v1/ready");
        var readyTook = clock.Elapsed;
        clock.Restart();
        var detailed = await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"));
        var detailedTook = clock.Elapsed;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var problem = await JsonAsync(ready);
        Assert.Equal("not_ready", problem.GetProperty("code").GetString());
        Assert.Equal(["database"], problem.GetProperty("missing").EnumerateArray().Select(m => m.GetString()));
        Assert.StartsWith("Missing: database. Database: PostgreSQL", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("unhealthy", detailed.GetProperty("status").GetString());
        var component = detailed.GetProperty("components").GetProperty("database");
        Assert.Equal("unhealthy", component.GetProperty("status").GetString());
        Assert.Contains("PostgreSQL", component.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("ready", detailed.GetProperty("migrations").GetProperty("status").GetString());
        Log($"{kind}: /ready answered 503 in {readyTook.TotalMilliseconds:0} ms, then /health/detailed in {detailedTook.TotalMilliseconds:0} ms");

        await EndOutageAsync(kind);
        var recovered = await EventuallyAsync(async () => (await GetAsync(client, "/api/v1/ready")).StatusCode == HttpStatusCode.OK,
            "/api/v1/ready answering 200 after the server returned");
        detailed = await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"));

        Assert.Equal("healthy", detailed.GetProperty("components").GetProperty("database").GetProperty("status").GetString());
        Assert.True(detailed.GetProperty("components").GetProperty("database").GetProperty("latency_ms").GetDouble() >= 0);
        Log($"{kind}: ready again {recovered.TotalMilliseconds:0} ms after the server returned");
    }

    [Theory]
    [InlineData(OutageKind.Stopped)]
    [InlineData(OutageKind.Paused)]
    public async Task Store_ServerDown_FailsAsUnavailableWithinItsBoundAndMarksTheDatabaseDown(OutageKind kind)
    {
        var database = await server.CreateDatabaseAsync(Ct);
        var factory = Backend(database.ConnectionString);
        var health = factory.Services.GetRequiredService<DatabaseHealth>();
        // Warm the pool: the request below then meets a pooled connection, the slowest case for a paused server.
        Assert.Null(await FindAsync(factory, Guid.CreateVersion7()));

        await BeginOutageAsync(kind);
        var clock = Stopwatch.StartNew();
        var first = await Record.ExceptionAsync(() => FindAsync(factory, Guid.CreateVersion7()));
        var firstTook = clock.Elapsed;
        clock.Restart();
        var second = await Record.ExceptionAsync(() => FindAsync(factory, Guid.CreateVersion7()));
        var secondTook = clock.Elapsed;

        AssertUnavailable(first);
        AssertUnavailable(second);
        Assert.NotNull(health.CurrentOutage);
        Assert.False(health.IsAvailable);
        var refused = Assert.Throws<DatabaseUnavailableException>(health.ThrowIfUnavailable);
        Assert.Contains("PostgreSQL", refused.Reason, StringComparison.Ordinal);
        Log($"{kind}: a command on a pooled connection failed after {firstTook.TotalMilliseconds:0} ms, " +
            $"the next (new connection) after {secondTook.TotalMilliseconds:0} ms ({first!.GetType().Name}: {DatabaseErrors.Describe(first)})");

        await EndOutageAsync(kind);
        var recovered = await EventuallyAsync(() => Task.FromResult(health.IsAvailable), "DatabaseHealth seeing the server again");

        Assert.Null(await FindAsync(factory, Guid.CreateVersion7()));
        health.ThrowIfUnavailable();
        Log($"{kind}: DatabaseHealth saw the server {recovered.TotalMilliseconds:0} ms after it returned");
    }

    [Fact]
    public async Task Store_ServerRestartedWhileIdle_FirstCommandSucceedsOnAFreshConnection()
    {
        var database = await server.CreateDatabaseAsync(Ct);
        var factory = Backend(database.ConnectionString);
        var health = factory.Services.GetRequiredService<DatabaseHealth>();
        Assert.Null(await FindAsync(factory, Guid.CreateVersion7()));
        // Restarted behind the Backend's back: its pooled connections are all dead now, and nothing has told it.
        await ServerPause.StopFastAsync(server.ProcessId, Ct);
        await server.StartAgainAsync(Ct);

        var found = await FindAsync(factory, Guid.CreateVersion7());
        var ready = await factory.CreateClient().GetAsync("/api/v1/ready", Ct).WaitAsync(RequestBound, Ct);

        Assert.Null(found);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        health.ThrowIfUnavailable();
    }

    [Fact]
    public async Task Start_ServerDown_MigrationUnavailableThenAppliedByItselfWhenItReturns()
    {
        // An empty database (not the migrated template): the Backend's own migration step must create the schema.
        await server.ExecuteAsync("postgres", "CREATE DATABASE fresh", Ct);
        var connectionString = server.ConnectionString("fresh");
        await StopServerAsync();

        var client = Backend(connectionString).CreateClient();
        var detailed = await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"));
        var ready = await GetAsync(client, "/api/v1/ready");

        var migrations = detailed.GetProperty("migrations");
        Assert.Equal("unavailable", migrations.GetProperty("status").GetString());
        Assert.Contains("PostgreSQL is unreachable", migrations.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(migrations.GetProperty("applied_migrations").EnumerateArray());
        Assert.NotEqual(JsonValueKind.Null, migrations.GetProperty("changed_at").ValueKind);
        Assert.Equal("unhealthy", detailed.GetProperty("components").GetProperty("database").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var problem = await JsonAsync(ready);
        Assert.Equal("database", problem.GetProperty("missing")[0].GetString());
        Assert.Contains("the migration step is unavailable", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        await server.StartAgainAsync(Ct);
        var recovered = await EventuallyAsync(async () => (await GetAsync(client, "/api/v1/ready")).StatusCode == HttpStatusCode.OK,
            "/api/v1/ready answering 200 after the server started");
        migrations = (await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"))).GetProperty("migrations");

        Assert.Equal("ready", migrations.GetProperty("status").GetString());
        Assert.Contains("Applied 1 migration(s)", migrations.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(["20261121000000_InitialSchema"], migrations.GetProperty("applied_migrations").EnumerateArray().Select(m => m.GetString()));
        Log($"migrated and ready {recovered.TotalMilliseconds:0} ms after the server started");
    }

    private BackendFactory Backend(string connectionString)
    {
        var factory = new BackendFactory(lab.BaseAddress, connectionString);
        factories.Add(factory);
        return factory;
    }

    private static async Task<ExecutionRecord?> FindAsync(BackendFactory factory, Guid id)
    {
        await using var scope = factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ExecutionStore>().FindAsync(id, Ct).WaitAsync(RequestBound, Ct);
    }

    private static void AssertUnavailable(Exception? exception)
    {
        Assert.NotNull(exception);
        // WaitAsync's own TimeoutException would mean the command hung past its bound.
        Assert.False(exception is TimeoutException, $"the command did not fail within {RequestBound.TotalSeconds} s");
        Assert.True(DatabaseErrors.IsUnavailable(exception), exception.ToString());
    }

    private async Task BeginOutageAsync(OutageKind kind)
    {
        if (kind == OutageKind.Stopped)
            await StopServerAsync();
        else
            pause = await ServerPause.PauseAsync(server.ProcessId, Ct);
    }

    private async Task EndOutageAsync(OutageKind kind)
    {
        if (kind == OutageKind.Stopped)
            await server.StartAgainAsync(Ct);
        else
            await pause!.ResumeAsync(Ct);
    }

    private async Task StopServerAsync()
    {
        await ServerPause.StopFastAsync(server.ProcessId, Ct);
        await server.StopAsync();
    }

    private static Task<HttpResponseMessage> GetAsync(HttpClient client, string path) =>
        client.GetAsync(path, Ct).WaitAsync(RequestBound, Ct);

    private static async Task<JsonElement> JsonAsync(HttpResponseMessage response) =>
        (await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(Ct), cancellationToken: Ct).WaitAsync(RequestBound, Ct)).RootElement;

    /// <summary>Polls <paramref name="condition"/> until it holds; returns how long that took.</summary>
    private static async Task<TimeSpan> EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < RecoveryBound)
        {
            if (await condition())
                return clock.Elapsed;
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"Not seen within {RecoveryBound.TotalSeconds} s: {what}.");
        return clock.Elapsed;
    }

    private static void Log(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    public async ValueTask DisposeAsync()
    {
        // Resume first: a paused server would make every disposal below wait for its timeouts.
        if (pause is not null)
            await pause.DisposeAsync();
        foreach (var factory in factories)
            await factory.DisposeAsync();
        await lab.DisposeAsync();
        // Npgsql's pools outlive the Backends: a fast stop ends their sessions instead of waiting for them.
        await ServerPause.StopFastAsync(server.ProcessId, CancellationToken.None);
        await server.DisposeAsync();
    }
}
