using System.Collections.Concurrent;
using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Data.Retention;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.Backend.Retention;

/// <summary>
/// The retention job on real PostgreSQL, wired the way the Backend wires it (<c>AddAgentLabDatabase</c> +
/// <c>AddRetention</c>, its pooled context, retrying strategy and short timeouts), one database per test.
/// </summary>
public sealed class RetentionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunOnce_OldFinishedExecutions_DeletedWithTheirRowsWhileRecentAndUnfinishedStay()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        var oldCompleted = await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-40));
        var oldFailed = await InsertAsync(database, ExecutionStatus.Failed, now.AddDays(-31));
        var oldCancelled = await InsertAsync(database, ExecutionStatus.Cancelled, now.AddDays(-90));
        var oldTimedOut = await InsertAsync(database, ExecutionStatus.TimedOut, now.AddDays(-35));
        var recent = await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-29));
        var oldQueued = await InsertAsync(database, ExecutionStatus.Queued, now.AddDays(-60));
        var oldRunning = await InsertAsync(database, ExecutionStatus.Running, now.AddDays(-45));
        await AddChildRowsAsync(database, oldCompleted);
        await using var replica = Replica.Create(database, new() { ["Retention:MaxAgeDays"] = "30" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(RetentionPassStatus.Completed, result.Status);
        Assert.Null(result.Error);
        Assert.Equal(4, result.DeletedByAge);
        Assert.Equal(0, result.DeletedByCount);
        Assert.Equal([oldQueued, oldRunning, recent], await IdsAsync(database));
        await using var db = database.CreateContext();
        Assert.False(await db.Events.AnyAsync(e => e.ExecutionId == oldCompleted, Ct));
        Assert.False(await db.NodeStates.AnyAsync(n => n.ExecutionId == oldCompleted, Ct));
        Assert.False(await db.Logs.AnyAsync(l => l.ExecutionId == oldCompleted, Ct));
        Assert.DoesNotContain(oldFailed, await IdsAsync(database));
        Assert.DoesNotContain(oldCancelled, await IdsAsync(database));
        Assert.DoesNotContain(oldTimedOut, await IdsAsync(database));
        Assert.Contains(replica.Logs.Entries, e => e.EventId == 1301 && e.Message.Contains("deleted 4 execution(s)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunOnce_MoreExecutionsThanTheCap_DeletesTheOldestFinishedFirst()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        var oldestRunning = await InsertAsync(database, ExecutionStatus.Running, now.AddDays(-10));
        var finished = new List<Guid>();
        for (var day = 9; day >= 1; day--)
            finished.Add(await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-day)));
        await using var replica = Replica.Create(database, new() { ["Retention:MaxExecutions"] = "4" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(RetentionPassStatus.Completed, result.Status);
        Assert.Equal(0, result.DeletedByAge);
        Assert.Equal(6, result.DeletedByCount);
        Assert.Equal([oldestRunning, .. finished[^3..]], await IdsAsync(database));
    }

    [Fact]
    public async Task RunOnce_OnlyUnfinishedBeyondTheCap_DeletesNothingMore()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        var queued = await InsertAsync(database, ExecutionStatus.Queued, now.AddDays(-3));
        var running = await InsertAsync(database, ExecutionStatus.Running, now.AddDays(-2));
        await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-1));
        await using var replica = Replica.Create(database, new() { ["Retention:MaxExecutions"] = "1", ["Retention:BatchSize"] = "1" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(RetentionPassStatus.Completed, result.Status);
        Assert.Equal(1, result.DeletedByCount);
        Assert.Equal([queued, running], await IdsAsync(database));
    }

    [Fact]
    public async Task RunOnce_BatchSizeTwoOverFiveOldRows_DeletesAllInThreeStatements()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 5; i++)
            await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-40 - i));
        await using var replica = Replica.Create(database, new() { ["Retention:BatchSize"] = "2" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(5, result.DeletedByAge);
        Assert.Equal(3, result.DeleteStatements);
        Assert.Empty(await IdsAsync(database));
        // Seen independently of the job's own counter: the DELETE commands EF executed.
        Assert.Equal(3, replica.Logs.Entries.Count(e => e.EventId == RelationalEventId.CommandExecuted.Id
            && e.Message.Contains("DELETE FROM executions WHERE", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task RunOnce_FinishedLongAgo_MergesTokenRunsAndKeepsLifecycleEventsAndSeqs()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var id = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddHours(-3), completedAgo: TimeSpan.FromHours(2));
        await AddEventsAsync(database, id,
            (EventTypes.ExecutionQueued, null, "{}"),
            (EventTypes.ExecutionStarted, null, """{"attempt":1}"""),
            (EventTypes.NodeStarted, "executor", "{}"),
            (EventTypes.Token, "executor", """{"text":"Hel"}"""),
            (EventTypes.Token, "executor", """{"text":"lo"}"""),
            (EventTypes.Token, "executor", """{"text":" world"}"""),
            (EventTypes.Log, "executor", """{"message":"tool call"}"""),
            (EventTypes.Token, "executor", """{"text":"!"}"""),
            (EventTypes.Token, "executor", """{"text":"?","tokens":2}"""),
            (EventTypes.Token, "executor", """{"text":"."}"""),
            (EventTypes.NodeCompleted, "executor", """{"duration_ms":12}"""),
            (EventTypes.ExecutionCompleted, null, "{}"));
        await using var replica = Replica.Create(database, new() { ["Retention:CompactEventsAfterMinutes"] = "60" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(1, result.ExecutionsCompacted);
        Assert.Equal(4, result.TokenEventsMerged);
        var events = await EventsAsync(database, id);
        Assert.Equal([1L, 2, 3, 4, 7, 8, 11, 12], events.Select(e => e.Seq));
        Assert.Equal(
            [EventTypes.ExecutionQueued, EventTypes.ExecutionStarted, EventTypes.NodeStarted, EventTypes.Token, EventTypes.Log,
             EventTypes.Token, EventTypes.NodeCompleted, EventTypes.ExecutionCompleted],
            events.Select(e => e.Type));
        AssertToken(events[3], "Hello world", tokens: 3, throughSeq: 6);
        AssertToken(events[5], "!?.", tokens: 4, throughSeq: 10);
        Assert.Equal("executor", events[3].Node);
        Assert.Equal("""{"attempt": 1}""", events[1].Data);
        Assert.Equal("""{"message": "tool call"}""", events[4].Data);
        Assert.Equal("""{"duration_ms": 12}""", events[6].Data);
        await using var db = database.CreateContext();
        Assert.NotNull((await db.Executions.AsNoTracking().SingleAsync(e => e.Id == id, Ct)).EventsCompactedAt);
    }

    [Fact]
    public async Task RunOnce_TokensOfParallelNodesInterleaved_MergesEachNodesOwnRuns()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var id = await InsertAsync(database, ExecutionStatus.Failed, DateTimeOffset.UtcNow.AddHours(-3), completedAgo: TimeSpan.FromHours(2));
        await AddEventsAsync(database, id,
            (EventTypes.Token, "a", """{"text":"a1"}"""),
            (EventTypes.Token, "a", """{"text":"a2"}"""),
            (EventTypes.Token, "b", """{"text":"b1"}"""),
            (EventTypes.Token, "a", """{"text":"a3"}"""),
            (EventTypes.Token, "b", """{"text":"b2"}"""),
            (EventTypes.Token, "b", """{"text":"b3"}"""),
            (EventTypes.Token, "b", """{"content":"not text"}"""),
            (EventTypes.Token, "b", """{"text":"b4"}"""),
            (EventTypes.ExecutionFailed, null, """{"code":"x"}"""));
        await using var replica = Replica.Create(database);

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(2, result.TokenEventsMerged);
        var events = await EventsAsync(database, id);
        Assert.Equal([1L, 3, 4, 5, 7, 8, 9], events.Select(e => e.Seq));
        AssertToken(events[0], "a1a2", tokens: 2, throughSeq: 2);
        Assert.Equal("""{"text": "b1"}""", events[1].Data);
        Assert.Equal("""{"text": "a3"}""", events[2].Data);
        AssertToken(events[3], "b2b3", tokens: 2, throughSeq: 6);
        Assert.Equal("""{"content": "not text"}""", events[4].Data);
        Assert.Equal("""{"text": "b4"}""", events[5].Data);
    }

    [Fact]
    public async Task RunOnce_SecondRun_ChangesNothingEvenWithTheMarkCleared()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var id = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddDays(-2), completedAgo: TimeSpan.FromDays(1));
        await AddEventsAsync(database, id,
            (EventTypes.ExecutionStarted, null, "{}"),
            (EventTypes.Token, null, """{"text":"x"}"""),
            (EventTypes.Token, null, """{"text":"y"}"""),
            (EventTypes.Token, null, """{"text":"z"}"""),
            (EventTypes.ExecutionCompleted, null, "{}"));
        await using var replica = Replica.Create(database);
        await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);
        var afterFirst = await EventsAsync(database, id);

        var second = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);
        await database.ExecuteAsync("UPDATE executions SET events_compacted_at = NULL", Ct);
        var third = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(0, second.ExecutionsCompacted);
        Assert.Equal(0, second.TokenEventsMerged);
        Assert.False(second.DidSomething);
        Assert.Equal(1, third.ExecutionsCompacted);
        Assert.Equal(0, third.TokenEventsMerged);
        Assert.Equal(afterFirst, await EventsAsync(database, id));
        AssertToken(afterFirst[1], "xyz", tokens: 3, throughSeq: 4);
    }

    [Fact]
    public async Task RunOnce_RecentlyFinishedOrUnfinished_EventsAreNotCompacted()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        var recent = await InsertAsync(database, ExecutionStatus.Completed, now.AddHours(-1), completedAgo: TimeSpan.FromMinutes(10));
        var running = await InsertAsync(database, ExecutionStatus.Running, now.AddHours(-5));
        foreach (var id in new[] { recent, running })
            await AddEventsAsync(database, id, (EventTypes.Token, null, """{"text":"a"}"""), (EventTypes.Token, null, """{"text":"b"}"""));
        await using var replica = Replica.Create(database, new() { ["Retention:CompactEventsAfterMinutes"] = "60" });

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(0, result.ExecutionsCompacted);
        Assert.Equal(2, (await EventsAsync(database, recent)).Count);
        Assert.Equal(2, (await EventsAsync(database, running)).Count);
    }

    [Fact]
    public async Task RunOnce_TwoReplicasAtOnce_DeleteEachRowOnceAndNeitherFails()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 4; i++)
            await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-40 - i));
        var recent = new List<Guid>();
        for (var day = 12; day >= 1; day--)
            recent.Add(await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-day)));
        // One row per statement with a pause: two passes unguarded would interleave and both cut 6 rows for the cap.
        var settings = new Dictionary<string, string?>
        {
            ["Retention:MaxExecutions"] = "6", ["Retention:BatchSize"] = "1", ["Retention:PauseBetweenBatchesMilliseconds"] = "20",
        };
        await using var first = Replica.Create(database, settings);
        await using var second = Replica.Create(database, settings);

        var results = await Task.WhenAll(first.Job.RunOnceAsync(Ct), second.Job.RunOnceAsync(Ct)).WaitAsync(Bound, Ct);

        Assert.All(results, r => Assert.Null(r.Error));
        Assert.All(results, r => Assert.Contains(r.Status, new[] { RetentionPassStatus.Completed, RetentionPassStatus.SkippedLockHeld }));
        Assert.Equal(4, results.Sum(r => r.DeletedByAge));
        Assert.Equal(6, results.Sum(r => r.DeletedByCount));
        Assert.Equal(recent[^6..], await IdsAsync(database));
    }

    [Fact]
    public async Task RunOnce_LockHeldElsewhere_SkipsThePass()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var old = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddDays(-40));
        await using var holder = new Npgsql.NpgsqlConnection(database.ConnectionString + ";Pooling=false");
        await holder.OpenAsync(Ct);
        await using (var take = new Npgsql.NpgsqlCommand($"SELECT pg_advisory_lock({RetentionJob.LockKey})", holder))
            await take.ExecuteScalarAsync(Ct);
        await using var replica = Replica.Create(database);

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(RetentionPassStatus.SkippedLockHeld, result.Status);
        Assert.Equal([old], await IdsAsync(database));
    }

    [Fact]
    public async Task RunOnce_DatabaseDown_ReportsUnavailableAndLogsAWarningWithoutThrowing()
    {
        await using var server = await PostgresServer.StartAsync(Ct).WaitAsync(Bound, Ct);
        await using var database = await server.CreateDatabaseAsync(Ct).WaitAsync(Bound, Ct);
        await using var replica = Replica.Create(database);
        await server.StopAsync().WaitAsync(Bound, Ct);

        var result = await replica.Job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Equal(RetentionPassStatus.DatabaseUnavailable, result.Status);
        Assert.Contains("unreachable", result.Error);
        Assert.Contains(replica.Logs.Entries, e => e.EventId == 1302 && e.Level == LogLevel.Warning);
    }

    [Fact]
    public async Task Job_DatabaseDownThenBack_KeepsRunningAndCatchesUp()
    {
        await using var server = await PostgresServer.StartAsync(Ct).WaitAsync(Bound, Ct);
        await using var database = await server.CreateDatabaseAsync(Ct).WaitAsync(Bound, Ct);
        var old = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddDays(-40));
        await using var replica = Replica.Create(database, new() { ["Retention:IntervalSeconds"] = "1" });
        await replica.MigrateAsync();
        await server.StopAsync().WaitAsync(Bound, Ct);

        await replica.Job.StartAsync(Ct).WaitAsync(Bound, Ct);
        await WaitUntilAsync(() => replica.Logs.Entries.Count(e => e.EventId == 1302) >= 2);
        var runningWhileDown = replica.Job.ExecuteTask is { IsCompleted: false };
        await server.StartAgainAsync(Ct).WaitAsync(Bound, Ct);
        await WaitUntilAsync(() => replica.Logs.Entries.Any(e => e.EventId == 1301));
        await replica.Job.StopAsync(Ct).WaitAsync(Bound, Ct);

        Assert.True(runningWhileDown);
        Assert.DoesNotContain(old, await IdsAsync(database));
        Assert.True(replica.Job.ExecuteTask!.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Job_StoppedMidPass_StopsCleanlyAndKeepsTheRestForLater()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 40; i++)
            await InsertAsync(database, ExecutionStatus.Completed, now.AddDays(-40 - i));
        await using var replica = Replica.Create(database, new()
        {
            ["Retention:BatchSize"] = "1", ["Retention:PauseBetweenBatchesMilliseconds"] = "250",
        });
        await replica.MigrateAsync();
        await replica.Job.StartAsync(Ct).WaitAsync(Bound, Ct);
        await WaitUntilAsync(() => replica.Logs.Entries.Any(e => e.EventId == RelationalEventId.CommandExecuted.Id
            && e.Message.Contains("DELETE FROM executions WHERE", StringComparison.Ordinal)));

        await replica.Job.StopAsync(Ct).WaitAsync(Bound, Ct);

        Assert.True(replica.Job.ExecuteTask!.IsCompletedSuccessfully);
        Assert.DoesNotContain(replica.Logs.Entries, e => e.Level >= LogLevel.Warning);
        var left = (await IdsAsync(database)).Count;
        Assert.InRange(left, 1, 39);
    }

    [Fact]
    public async Task Job_Disabled_RunsNoPass()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var old = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddDays(-40));
        await using var replica = Replica.Create(database, new() { ["Retention:Enabled"] = "false", ["Retention:IntervalSeconds"] = "1" });
        await replica.MigrateAsync();

        await replica.Job.StartAsync(Ct).WaitAsync(Bound, Ct);
        await replica.Job.ExecuteTask!.WaitAsync(Bound, Ct);

        Assert.Contains(replica.Logs.Entries, e => e.EventId == 1305);
        Assert.Equal([old], await IdsAsync(database));
    }

    [Theory]
    [InlineData("BatchSize", "0")]
    [InlineData("MaxAgeDays", "0")]
    [InlineData("MaxExecutions", "0")]
    [InlineData("IntervalSeconds", "0")]
    [InlineData("PauseBetweenBatchesMilliseconds", "-1")]
    [InlineData("CompactEventsAfterMinutes", "-1")]
    public async Task Options_OutOfRange_FailValidation(string key, string value)
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        await using var replica = Replica.Create(database, new() { [$"Retention:{key}"] = value });

        var error = Assert.Throws<OptionsValidationException>(() => replica.Services.GetRequiredService<IOptions<RetentionOptions>>().Value);

        Assert.Contains(key, error.Message);
    }

    [Fact]
    public async Task Backend_RetentionJob_IsTheHostedServiceAndRunsOnTheBackendsDatabase()
    {
        await using var database = await SharedPostgres.CreateDatabaseAsync(Ct);
        var old = await InsertAsync(database, ExecutionStatus.Completed, DateTimeOffset.UtcNow.AddDays(-40));
        await using var factory = new BackendFactory(new Uri("http://127.0.0.1:9"), database.ConnectionString);

        var job = factory.Services.GetRequiredService<RetentionJob>();
        var result = await job.RunOnceAsync(Ct).WaitAsync(Bound, Ct);

        Assert.Contains(factory.Services.GetServices<IHostedService>(), s => ReferenceEquals(s, job));
        Assert.Equal(1, result.DeletedByAge);
        Assert.DoesNotContain(old, await IdsAsync(database));
    }

    private static void AssertToken(EventRow row, string text, long tokens, long throughSeq)
    {
        Assert.Equal(EventTypes.Token, row.Type);
        using var data = JsonDocument.Parse(row.Data);
        Assert.Equal(text, data.RootElement.GetProperty("text").GetString());
        Assert.Equal(tokens, data.RootElement.GetProperty("tokens").GetInt64());
        Assert.Equal(throughSeq, data.RootElement.GetProperty("through_seq").GetInt64());
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition was not met in time");
            await Task.Delay(100, Ct);
        }
    }

    private static async Task<Guid> InsertAsync(TestDatabase database, string status, DateTimeOffset createdAt, TimeSpan? completedAgo = null)
    {
        var finished = ExecutionStatus.IsTerminal(status);
        var record = new ExecutionRecord
        {
            Owner = TestTokens.DefaultSubject,
            Id = Guid.CreateVersion7(createdAt),
            ExecutionType = "simple",
            Mode = "async",
            Status = status,
            Request = """{"prompt":"p"}""",
            RequestHash = "hash",
            CreatedAt = createdAt,
            StartedAt = status == ExecutionStatus.Queued ? null : createdAt,
            CompletedAt = finished ? (completedAgo is { } ago ? DateTimeOffset.UtcNow - ago : createdAt.AddSeconds(5)) : null,
            LeaseOwner = finished ? null : "replica-a",
            LeaseExpiresAt = finished ? null : DateTimeOffset.UtcNow.AddMinutes(1),
        };
        await using var db = database.CreateContext();
        db.Executions.Add(record);
        await db.SaveChangesAsync(Ct);
        return record.Id;
    }

    private static async Task AddChildRowsAsync(TestDatabase database, Guid id)
    {
        await AddEventsAsync(database, id, (EventTypes.ExecutionQueued, null, "{}"), (EventTypes.ExecutionCompleted, null, "{}"));
        await using var db = database.CreateContext();
        db.NodeStates.Add(new NodeStateRecord { ExecutionId = id, Position = 0, Node = "executor", Status = "completed", Attempt = 1 });
        db.Logs.Add(new ExecutionLogRecord { ExecutionId = id, Ts = DateTimeOffset.UtcNow, Level = "info", Message = "m" });
        await db.SaveChangesAsync(Ct);
    }

    private static async Task AddEventsAsync(TestDatabase database, Guid id, params (string Type, string? Node, string Data)[] events)
    {
        await using var db = database.CreateContext();
        var seq = 0L;
        foreach (var (type, node, data) in events)
            db.Events.Add(new ExecutionEventRecord { ExecutionId = id, Seq = ++seq, Type = type, Node = node, Data = data, Ts = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync(Ct);
    }

    /// <summary>Execution ids left, oldest first.</summary>
    private static async Task<List<Guid>> IdsAsync(TestDatabase database)
    {
        await using var db = database.CreateContext();
        return await db.Executions.OrderBy(e => e.CreatedAt).Select(e => e.Id).ToListAsync(Ct);
    }

    private sealed record EventRow(long Seq, string Type, string? Node, string Data);

    private static async Task<List<EventRow>> EventsAsync(TestDatabase database, Guid id)
    {
        await using var db = database.CreateContext();
        return await db.Events.Where(e => e.ExecutionId == id).OrderBy(e => e.Seq)
            .Select(e => new EventRow(e.Seq, e.Type, e.Node, e.Data)).ToListAsync(Ct);
    }

    /// <summary>One Backend replica's worth of the job: the Backend's own registrations on the test's database.</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private Replica(ServiceProvider services, RecordingLogs logs)
        {
            Services = services;
            Logs = logs;
            Job = services.GetRequiredService<RetentionJob>();
        }

        public ServiceProvider Services { get; }
        public RecordingLogs Logs { get; }
        public RetentionJob Job { get; }

        public static Replica Create(TestDatabase database, Dictionary<string, string?>? settings = null)
        {
            var all = new Dictionary<string, string?>
            {
                ["ConnectionStrings:agentlabdb"] = database.ConnectionString,
                ["Retention:PauseBetweenBatchesMilliseconds"] = "0",
            };
            foreach (var (key, value) in settings ?? [])
                all[key] = value;
            var logs = new RecordingLogs();
            var services = new ServiceCollection()
                .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(all).Build())
                .AddSingleton(TimeProvider.System)
                .AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs))
                .AddAgentLabDatabase()
                .AddRetention();
            return new Replica(services.BuildServiceProvider(), logs);
        }

        /// <summary>Runs the migration step, so <see cref="DatabaseState"/> is ready as it is in a started Backend.</summary>
        public async Task MigrateAsync()
        {
            var migrator = Services.GetServices<IHostedService>().OfType<DatabaseMigrator>().Single();
            await migrator.StartAsync(Ct).WaitAsync(Bound, Ct);
            await migrator.ExecuteTask!.WaitAsync(Bound, Ct);
            Assert.True(Services.GetRequiredService<DatabaseState>().IsReady);
        }

        public async ValueTask DisposeAsync()
        {
            await Job.StopAsync(CancellationToken.None).WaitAsync(Bound);
            await Services.DisposeAsync();
        }
    }

    private sealed record LogEntry(string Category, LogLevel Level, int EventId, string Message);

    private sealed class RecordingLogs : ILoggerProvider
    {
        public ConcurrentQueue<LogEntry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Recorder(RecordingLogs owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue(new LogEntry(category, logLevel, eventId.Id, formatter(state, exception)));
        }
    }
}
