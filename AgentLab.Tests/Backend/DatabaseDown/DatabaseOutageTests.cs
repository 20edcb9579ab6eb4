using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using AgentLab.Backend.Data;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
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
    /// <summary>
    /// The most one request may take while the database is down (a hang fails the test). About 5 s is expected against
    /// a paused server; the margin is for a loaded 2-core CI machine, still well under Npgsql's 30 s defaults.
    /// </summary>
    private static readonly TimeSpan RequestBound = TimeSpan.FromSeconds(20);

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
    public async Task Backend_ServerDown_Execute503AndNotReadyNamingTheDatabaseThenBothRecoverByThemselves(OutageKind kind)
    {
        var database = await server.CreateDatabaseAsync(Ct);
        var client = Backend(database.ConnectionString).CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(client, "/api/v1/ready")).StatusCode);
        var before = await JsonAsync(await PostExecuteAsync(client));
        var beforeId = before.GetProperty("execution_id").GetString();

        await BeginOutageAsync(kind);
        var clock = Stopwatch.StartNew();
        var firstExecute = await PostExecuteAsync(client);
        var firstExecuteTook = clock.Elapsed;
        clock.Restart();
        var ready = await GetAsync(client, "/api/v1/ready");
        var readyTook = clock.Elapsed;
        var detailed = await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"));
        clock.Restart();
        var secondExecute = await PostExecuteAsync(client);
        var secondExecuteTook = clock.Elapsed;
        var read = await GetAsync(client, $"/api/v1/executions/{beforeId}");

        await AssertDbUnavailableAsync(firstExecute);
        await AssertDbUnavailableAsync(secondExecute);
        await AssertDbUnavailableAsync(read);
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
        Log($"{kind}: execute answered 503 in {firstExecuteTook.TotalMilliseconds:0} ms (first to meet the outage), " +
            $"/ready 503 in {readyTook.TotalMilliseconds:0} ms, the next execute 503 in {secondExecuteTook.TotalMilliseconds:0} ms");

        await EndOutageAsync(kind);
        var recovered = await EventuallyAsync(async () => (await GetAsync(client, "/api/v1/ready")).StatusCode == HttpStatusCode.OK,
            "/api/v1/ready answering 200 after the server returned");
        detailed = await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"));
        var after = await PostExecuteAsync(client);

        Assert.Equal("healthy", detailed.GetProperty("components").GetProperty("database").GetProperty("status").GetString());
        Assert.True(detailed.GetProperty("components").GetProperty("database").GetProperty("latency_ms").GetDouble() >= 0);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal("completed", (await JsonAsync(after)).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(client, $"/api/v1/executions/{beforeId}")).StatusCode);
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
        // The failure makes the database suspect; the probe it starts confirms the outage.
        var confirmed = await EventuallyAsync(() => Task.FromResult(health.CurrentOutage is not null), "the probe confirming the outage");
        clock.Restart();
        var second = await Record.ExceptionAsync(() => FindAsync(factory, Guid.CreateVersion7()));
        var secondTook = clock.Elapsed;

        AssertUnavailable(first);
        AssertUnavailable(second);
        Assert.IsType<DatabaseUnavailableException>(second);
        Assert.False(health.IsAvailable);
        var refused = Assert.Throws<DatabaseUnavailableException>(health.ThrowIfUnavailable);
        Assert.Contains("PostgreSQL", refused.Reason, StringComparison.Ordinal);
        Log($"{kind}: a command on a pooled connection failed after {firstTook.TotalMilliseconds:0} ms " +
            $"({first!.GetType().Name}: {DatabaseErrors.Describe(first)}); the probe confirmed the outage " +
            $"{confirmed.TotalMilliseconds:0} ms later; the next command was refused in {secondTook.TotalMilliseconds:0} ms");

        await EndOutageAsync(kind);
        var recovered = await EventuallyAsync(() => Task.FromResult(health.IsAvailable), "DatabaseHealth seeing the server again");

        Assert.Null(await FindAsync(factory, Guid.CreateVersion7()));
        health.ThrowIfUnavailable();
        Log($"{kind}: DatabaseHealth saw the server {recovered.TotalMilliseconds:0} ms after it returned");
    }

    [Theory]
    [InlineData(OutageKind.Stopped)]
    [InlineData(OutageKind.Paused)]
    public async Task Execute_OutageDuringRuns_EveryExecutionIsWholeOrAbsent(OutageKind kind)
    {
        var database = await server.CreateDatabaseAsync(Ct);
        // Runs take a while, so that the outage finds some of them between their first and their last write.
        lab.Inference = async ctx =>
        {
            await Task.Delay(300, ctx.RequestAborted);
            await FakeLabService.Json(StatusCodes.Status200OK, FakeLabService.InferenceJson)(ctx);
        };
        var client = Backend(database.ConnectionString).CreateClient();
        var before = Enumerable.Range(0, 16).Select(i => PostExecuteAsync(client, async: i % 2 == 1)).ToList();
        await EventuallyAsync(() => Task.FromResult(lab.Received.Count(r => r.Path == "/inference/") >= 4), "runs in flight");

        await BeginOutageAsync(kind);
        var during = Enumerable.Range(0, 4).Select(i => PostExecuteAsync(client, async: i % 2 == 1)).ToList();
        var responses = await Task.WhenAll(before.Concat(during));
        var answered = new List<string>();
        foreach (var response in responses)
        {
            if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted)
                answered.Add((await JsonAsync(response)).GetProperty("execution_id").GetString()!);
            else
                await AssertDbUnavailableAsync(response);
        }
        await EndOutageAsync(kind);
        await EventuallyAsync(async () => (await GetAsync(client, "/api/v1/ready")).StatusCode == HttpStatusCode.OK, "ready again");

        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.ServiceUnavailable);
        Assert.Empty(await QueryIdsAsync(database, """
            SELECT id FROM executions WHERE NOT (
                (status IN ('completed', 'failed', 'cancelled', 'timed_out') AND completed_at IS NOT NULL AND lease_expires_at IS NULL)
                OR (status IN ('queued', 'running') AND completed_at IS NULL AND lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
            """));
        Assert.Empty(await QueryIdsAsync(database, """
            SELECT id FROM executions e WHERE NOT EXISTS (
                SELECT 1 FROM execution_events v WHERE v.execution_id = e.id AND v.seq = 1 AND v.type = 'execution_queued')
            """));
        Assert.Empty(await QueryIdsAsync(database, """
            SELECT execution_id FROM execution_events GROUP BY execution_id HAVING min(seq) <> 1 OR max(seq) <> count(*)
            """));
        Assert.Empty(await QueryIdsAsync(database, """
            SELECT id FROM executions e WHERE status IN ('completed', 'failed', 'cancelled', 'timed_out') AND NOT EXISTS (
                SELECT 1 FROM execution_events v WHERE v.execution_id = e.id
                  AND v.type IN ('execution_completed', 'execution_failed', 'execution_cancelled'))
            """));
        Assert.Empty(await QueryIdsAsync(database, """
            SELECT id FROM executions e WHERE status = 'completed'
              AND (output IS NULL OR NOT EXISTS (SELECT 1 FROM node_states n WHERE n.execution_id = e.id))
            """));
        var recorded = await QueryIdsAsync(database, "SELECT id FROM executions");
        Assert.All(answered, id => Assert.Contains(id, recorded));
        Log($"{kind}: {answered.Count} answered 200/202, {responses.Length - answered.Count} answered 503; {recorded.Count} rows, all consistent");
    }

    [Fact]
    public async Task Backend_ServerRestartedWhileIdle_FirstCommandsSucceedOnFreshConnections()
    {
        var database = await server.CreateDatabaseAsync(Ct);
        // No background sweep during the restart: one would meet the shutdown, and the probe would then (rightly)
        // confirm an outage, which is not what this test is about.
        var factory = Backend(database.ConnectionString, new Dictionary<string, string?> { ["Execution:SweepIntervalSeconds"] = "3600" });
        var health = factory.Services.GetRequiredService<DatabaseHealth>();
        Assert.Null(await FindAsync(factory, Guid.CreateVersion7()));
        // Restarted behind the Backend's back: its pooled connections are all dead now, and nothing has told it.
        await ServerPause.StopFastAsync(server.ProcessId, Ct);
        await server.StartAgainAsync(Ct);

        var found = await FindAsync(factory, Guid.CreateVersion7());
        var executed = await PostExecuteAsync(factory.CreateClient());

        Assert.Null(found);
        Assert.Equal(HttpStatusCode.OK, executed.StatusCode);
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
        var execute = await PostExecuteAsync(client);
        var health = await GetAsync(client, "/health");

        // What the AppHost polls: the Backend is up but cannot do its work.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Contains("database", await health.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
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
        Assert.Equal(HttpStatusCode.ServiceUnavailable, execute.StatusCode);
        Assert.Equal("db_unavailable", (await JsonAsync(execute)).GetProperty("code").GetString());

        await server.StartAgainAsync(Ct);
        var recovered = await EventuallyAsync(async () => (await GetAsync(client, "/api/v1/ready")).StatusCode == HttpStatusCode.OK,
            "/api/v1/ready answering 200 after the server started");
        migrations = (await JsonAsync(await GetAsync(client, "/api/v1/health/detailed"))).GetProperty("migrations");
        execute = await PostExecuteAsync(client);

        var all = AllMigrations();
        Assert.Equal("ready", migrations.GetProperty("status").GetString());
        Assert.Contains($"Applied {all.Count} migration(s)", migrations.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(all, migrations.GetProperty("applied_migrations").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(HttpStatusCode.OK, execute.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(client, "/health")).StatusCode);
        Log($"migrated and ready {recovered.TotalMilliseconds:0} ms after the server started");
    }

    private BackendFactory Backend(string connectionString, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var factory = new BackendFactory(lab.BaseAddress, connectionString, settings);
        factories.Add(factory);
        return factory;
    }

    private static async Task<ExecutionRecord?> FindAsync(BackendFactory factory, Guid id)
    {
        await using var scope = factory.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ExecutionStore>().FindAsync(id, Ct).WaitAsync(RequestBound, Ct);
    }

    private static Task<HttpResponseMessage> PostExecuteAsync(HttpClient client, bool async = false)
    {
        var body = async ? """{"prompt": "Dime 3 números primos", "mode": "async"}""" : """{"prompt": "Dime 3 números primos"}""";
        return client.PostAsync("/api/v1/execute", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct)
            .WaitAsync(RequestBound, Ct);
    }

    private static async Task AssertDbUnavailableAsync(HttpResponseMessage response)
    {
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"expected 503, got {(int)response.StatusCode}: {body}");
        Assert.Equal("db_unavailable", body.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Contains("ConnectionStrings:agentlabdb", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    /// <summary>The ids (as text) a query returns, read on a fresh connection.</summary>
    private static async Task<List<string>> QueryIdsAsync(TestDatabase database, string sql)
    {
        await using var connection = new Npgsql.NpgsqlConnection(database.ConnectionString);
        await connection.OpenAsync(Ct).WaitAsync(RequestBound, Ct);
        await using var command = new Npgsql.NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(Ct).WaitAsync(RequestBound, Ct);
        var ids = new List<string>();
        while (await reader.ReadAsync(Ct))
            ids.Add(reader.GetGuid(0).ToString());
        return ids;
    }

    /// <summary>Every migration the Backend ships, oldest first.</summary>
    private static List<string> AllMigrations()
    {
        using var db = new AgentLabDb(new DbContextOptionsBuilder<AgentLabDb>().UseNpgsql("Host=unused").Options);
        return [.. db.Database.GetMigrations()];
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
