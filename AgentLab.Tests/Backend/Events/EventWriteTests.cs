using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Events;

/// <summary>
/// The write side of the event log: every event of a run stored with a gap-free seq, then published in that order;
/// tokens coalesced; the journal and a concurrent cancel sharing the seqs. Real PostgreSQL, fake LabService.
/// </summary>
public sealed class EventWriteTests : BackendTestBase
{
    private const string SimpleBody = """{"prompt": "Dime 3 números primos", "model": "mistral7b"}""";

    private const string OrchestratorBody = """
        {"prompt": "¿Cuánto es 6 × 7?", "model": "mistral7b", "execution_type": "orchestrator",
         "agents": ["analyzer", "executor", "validator"], "parameters": {"timeout_seconds": 60}}
        """;

    [Fact]
    public async Task Execute_SimpleSyncStreamed_StoresNodeEventsTokensAndTerminal_PublishedInTheSameOrder()
    {
        Lab.Inference = FakeLabService.InferenceNdjson("2", ", 3", " y 5");
        var client = Backend(null, out var factory);
        var published = Capture(factory);

        var response = await PostJsonAsync(client, SimpleBody);

        var body = await JsonAsync(response);
        Assert.Equal("completed", body.GetProperty("status").GetString());
        Assert.Equal("2, 3 y 5", body.GetProperty("output").GetString());
        var id = Guid.Parse(body.GetProperty("execution_id").GetString()!);
        var stored = await EventsAsync(id);
        AssertGapFree(stored);
        Assert.Equal(["execution_queued", "execution_started", "node_started"], stored.Take(3).Select(e => e.Type));
        Assert.Equal(["node_completed", "execution_completed"], stored.TakeLast(2).Select(e => e.Type));
        var tokens = stored.Where(e => e.Type == "token").ToList();
        Assert.NotEmpty(tokens);
        Assert.All(stored.Skip(2).SkipLast(1), e => Assert.Equal("inference", e.Node));
        Assert.Equal("2, 3 y 5", string.Concat(tokens.Select(t => Text(t))));
        Assert.Equal("2", Text(tokens[0]));    // the first token alone, at once
        using (var completed = JsonDocument.Parse(stored[^2].Data))
            Assert.Equal(3, completed.RootElement.GetProperty("metrics").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(Summary(stored), Summary(await published.UntilTerminalAsync()));
    }

    [Fact]
    public async Task Execute_SimpleAsync_StoresAndPublishesEveryEventInSeqOrder()
    {
        Lab.Inference = FakeLabService.InferenceNdjson("uno", " dos", " tres", " cuatro");
        var client = Backend(null, out var factory);
        var published = Capture(factory);

        var accepted = await PostJsonAsync(client, SimpleBody.Replace("{", """{"mode": "async", """, StringComparison.Ordinal));
        var id = Guid.Parse((await JsonAsync(accepted)).GetProperty("execution_id").GetString()!);
        var events = await published.UntilTerminalAsync();

        var stored = await EventsAsync(id);
        AssertGapFree(stored);
        Assert.Equal(Summary(stored), Summary(events));
        Assert.Equal("execution_completed", stored[^1].Type);
        Assert.Equal(["execution_queued", "execution_started", "node_started"], stored.Take(3).Select(e => e.Type));
        Assert.Equal("uno dos tres cuatro", string.Concat(stored.Where(e => e.Type == "token").Select(Text)));
        // What is published is what a replay reads back: same data, same timestamp.
        var replay = ExecutionEventLog.ToEvent(stored[3]);
        Assert.Equal(ExecutionEventJson.ToUtf8(replay), ExecutionEventJson.ToUtf8(events[3]));
    }

    [Fact]
    public async Task Execute_200Tokens_StoredAsFewChunksThatJoinToTheOutput_FirstTokenAlone()
    {
        var words = Enumerable.Range(0, 200).Select(i => $"w{i} ").ToArray();
        Lab.Inference = FakeLabService.InferenceNdjson(words);
        // A chunk interval longer than the test: only the size limit and the run's end flush, so the count is exact.
        var client = Backend(new Dictionary<string, string?>
        {
            ["Events:TokenChunkMilliseconds"] = "60000",
            ["Events:TokenChunkMaxTokens"] = "64",
        });

        var body = await JsonAsync(await PostJsonAsync(client, SimpleBody));

        var id = Guid.Parse(body.GetProperty("execution_id").GetString()!);
        var tokens = (await EventsAsync(id)).Where(e => e.Type == "token").ToList();
        Assert.Equal(5, tokens.Count);    // the first alone, then 64 + 64 + 64 + 7
        Assert.Equal("w0 ", Text(tokens[0]));
        Assert.Equal([1, 64, 64, 64, 7], tokens.Select(Count));
        Assert.Equal(string.Concat(words), string.Concat(tokens.Select(Text)));
        Assert.Equal(string.Concat(words), body.GetProperty("output").GetString());
    }

    [Fact]
    public async Task Execute_LabServiceAnswersPlainJson_StillStoresNodeStartedOutputAndNodeCompleted()
    {
        var client = Backend();

        var body = await JsonAsync(await PostJsonAsync(client, SimpleBody));

        var stored = await EventsAsync(Guid.Parse(body.GetProperty("execution_id").GetString()!));
        AssertGapFree(stored);
        Assert.Equal(["execution_queued", "execution_started", "node_started", "token", "node_completed", "execution_completed"],
            stored.Select(e => e.Type));
        Assert.Equal("2, 3 y 5", Text(stored[3]));
        var sent = Assert.Single(Lab.Received, r => r.Path == "/inference/");
        Assert.Contains("application/x-ndjson", sent.Accept);
    }

    [Fact]
    public async Task Execute_SimpleStreamEndsWithError_NodeFailedThenExecutionFailed()
    {
        Lab.Inference = FakeLabService.Ndjson(
            """{"type":"started","model":"mistral:7b","model_server":"simulator"}""",
            """{"type":"token","content":"Hola"}""",
            """{"type":"error","error":{"code":"model_error","message":"the model crashed","status":502}}""");
        var client = Backend();

        var problem = await AssertProblemAsync(await PostJsonAsync(client, SimpleBody), 502, "model_error");

        var stored = await EventsAsync(Guid.Parse(problem.GetProperty("execution_id").GetString()!));
        AssertGapFree(stored);
        Assert.Equal(["node_started", "token", "node_failed", "execution_failed"], stored.Skip(2).Select(e => e.Type));
        using var failed = JsonDocument.Parse(stored[^2].Data);
        Assert.Equal("model_error", failed.RootElement.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Execute_Orchestrator_NodeEventsStoredInFlowOrder()
    {
        var lines = FakeLabService.OrchestrateEvents(["analyzer", "executor", "validator"]).ToList();
        // Tokens inside each node, and a monitor line after the analyzer's step.
        lines.Insert(1, """{"seq":0,"type":"token","node":"analyzer","text":"plan"}""");
        lines.Insert(3, """{"seq":0,"type":"log","level":"information","message":"monitor: analyzer attempt 1 completed"}""");
        lines.Insert(5, """{"seq":0,"type":"token","node":"executor","text":"42"}""");
        Lab.Orchestrate = FakeLabService.Ndjson([.. lines]);
        var client = Backend();

        var body = await JsonAsync(await PostJsonAsync(client, OrchestratorBody));

        Assert.Equal("completed", body.GetProperty("status").GetString());
        var stored = await EventsAsync(Guid.Parse(body.GetProperty("execution_id").GetString()!));
        AssertGapFree(stored);
        Assert.Equal(
        [
            "execution_queued", "execution_started",
            "node_started analyzer", "token analyzer", "node_completed analyzer", "log",
            "node_started executor", "token executor", "node_completed executor",
            "node_started validator", "node_completed validator",
            "execution_completed",
        ], stored.Select(e => e.Node is null ? e.Type : $"{e.Type} {e.Node}"));
        using var completed = JsonDocument.Parse(stored[4].Data);
        Assert.Equal("analyzer output", completed.RootElement.GetProperty("output").GetString());
        Assert.False(completed.RootElement.TryGetProperty("name", out _));
    }

    [Fact]
    public async Task Execute_OrchestratorContinuedAfterLabServiceDied_RestoredNodesAreNotStoredTwice()
    {
        var runs = FakeLabService.OrchestrateEvents(["analyzer", "executor"]);
        var analyzerRun = FakeLabService.NodeRunJson("analyzer", "analyzer output", restored: true);
        var attempts = 0;
        Lab.Orchestrate = async ctx =>
        {
            await FakeLabService.StartNdjsonAsync(ctx);
            if (Interlocked.Increment(ref attempts) == 1)
            {
                // The analyzer completes, then LabService dies mid-executor.
                await FakeLabService.WriteLineAsync(ctx, runs[0]);
                await FakeLabService.WriteLineAsync(ctx, runs[1]);
                await FakeLabService.WriteLineAsync(ctx, runs[2]);
                // A reset can discard what the Backend has not read yet: die once the executor's start is stored.
                await ExecutorStartedAsync();
                ctx.Abort();
                return;
            }
            // The continued run replays the restored analyzer and the monitor's line about it, then runs on.
            await FakeLabService.WriteLineAsync(ctx, FakeLabService.NodeCompletedEvent(1, analyzerRun, "analyzer"));
            await FakeLabService.WriteLineAsync(ctx, """{"seq":2,"type":"log","level":"information","message":"monitor: analyzer restored"}""");
            foreach (var line in runs.Skip(2))
                await FakeLabService.WriteLineAsync(ctx, line);
        };
        var client = Backend(new Dictionary<string, string?>
        {
            ["Orchestrator:ResumeDelaySeconds"] = "0",
            ["Orchestrator:MaxResumeDelaySeconds"] = "0",
        });

        var body = await JsonAsync(await PostJsonAsync(client, OrchestratorBody));

        Assert.True(body.GetProperty("status").ValueKind == JsonValueKind.String && body.GetProperty("status").GetString() == "completed", body.ToString());
        var stored = await EventsAsync(Guid.Parse(body.GetProperty("execution_id").GetString()!));
        AssertGapFree(stored);
        Assert.Single(stored, e => e.Type == "node_completed" && e.Node == "analyzer");
        Assert.DoesNotContain(stored, e => e.Type == "log");
        Assert.Equal(2, stored.Count(e => e.Type == "node_started" && e.Node == "executor"));
        Assert.Equal("execution_completed", stored[^1].Type);
    }

    [Fact]
    public async Task Journal_FloodingWhileACancelRaces_SeqsStayGapFreeAndTheCancelIsLast()
    {
        Backend(null, out var factory);
        var journals = factory.Services.GetRequiredService<EventJournals>();

        for (var round = 0; round < 5; round++)
        {
            const string owner = "race-writer";
            Guid id;
            long lastSeq;
            await using (var scope = factory.Services.CreateAsyncScope())
            {
                var store = scope.ServiceProvider.GetRequiredService<ExecutionStore>();
                var record = NewRecord(owner);
                id = record.Id;
                await store.CreateAsync(record, Ct).WaitAsync(Bound, Ct);
                lastSeq = (await store.TryStartRunAsync(id, owner, TimeSpan.FromMinutes(5), Ct).WaitAsync(Bound, Ct))!.LastSeq;
            }
            await using var journal = journals.Start(id, owner, lastSeq);

            var flooding = Task.Run(async () =>
            {
                for (var i = 0; !journal.Stopped.IsCancellationRequested; i++)
                {
                    if (i % 3 == 0)
                        await journal.AppendAsync(EventTypes.Log, null, $$"""{"level":"information","message":"line {{i}}"}""", Ct);
                    else
                        await journal.TokenAsync("executor", $"t{i} ", Ct);
                    if (i % 50 == 0)
                        await Task.Yield();
                }
            }, Ct);
            // Let some batches land first (more each round), then cancel from another scope, as another replica would.
            while (journal.LastSeq < lastSeq + 10 * (round + 1))
                await Task.Delay(1, Ct);
            bool cancelled;
            await using (var scope = factory.Services.CreateAsyncScope())
                cancelled = await scope.ServiceProvider.GetRequiredService<ExecutionStore>().CancelAsync(id, "race", Ct).WaitAsync(Bound, Ct);
            await flooding.WaitAsync(Bound, Ct);
            await journal.CompleteAsync().WaitAsync(Bound, Ct);

            Assert.True(cancelled);
            Assert.True(journal.IsLeaseLost);
            var stored = await EventsAsync(id);
            AssertGapFree(stored);
            Assert.Equal("execution_cancelled", stored[^1].Type);
            Assert.Single(stored, e => e.Type == "execution_cancelled");
            Assert.Equal(journal.LastSeq + 1, stored[^1].Seq);
        }
    }

    private async Task ExecutorStartedAsync()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(Bound);
        while (true)
        {
            await using (var db = Database.CreateContext())
            {
                if (await db.Events.AnyAsync(e => e.Type == "node_started" && e.Node == "executor", deadline.Token))
                    return;
            }
            await Task.Delay(10, deadline.Token);
        }
    }

    private static ExecutionRecord NewRecord(string owner)
    {
        var now = DateTimeOffset.UtcNow;
        return new ExecutionRecord
        {
            Owner = TestTokens.DefaultSubject,
            Id = Guid.CreateVersion7(),
            ExecutionType = "simple",
            Mode = "async",
            Status = ExecutionStatus.Queued,
            Request = """{"prompt":"x"}""",
            RequestHash = Guid.NewGuid().ToString("N"),
            CreatedAt = now,
            LeaseOwner = owner,
            LeaseExpiresAt = now.AddMinutes(5),
        };
    }

    internal static void AssertGapFree(IReadOnlyList<ExecutionEventRecord> events) =>
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));

    private async Task<List<ExecutionEventRecord>> EventsAsync(Guid id)
    {
        await using var db = Database.CreateContext();
        return await db.Events.AsNoTracking().Where(e => e.ExecutionId == id).OrderBy(e => e.Seq).ToListAsync(Ct).WaitAsync(Bound, Ct);
    }

    private static string Text(ExecutionEventRecord e)
    {
        using var data = JsonDocument.Parse(e.Data);
        return data.RootElement.GetProperty("text").GetString()!;
    }

    private static int Count(ExecutionEventRecord e)
    {
        using var data = JsonDocument.Parse(e.Data);
        return data.RootElement.GetProperty("tokens").GetInt32();
    }

    private static List<string> Summary(IEnumerable<ExecutionEventRecord> events) => events.Select(e => $"{e.Seq} {e.Type} {e.Node}").ToList();

    private static List<string> Summary(IEnumerable<ExecutionEvent> events) => events.Select(e => $"{e.Seq} {e.Type} {e.Node}").ToList();

    private static PublishedEvents Capture(BackendFactory factory)
    {
        var published = new PublishedEvents();
        factory.Services.GetRequiredService<ExecutionEventPublisher>().Local += m => published.Add(m.Event);
        return published;
    }

    /// <summary>What this replica published (its in-process delivery), in publishing order.</summary>
    private sealed class PublishedEvents
    {
        private readonly List<ExecutionEvent> events = [];
        private readonly TaskCompletionSource terminal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Add(ExecutionEvent e)
        {
            lock (events)
                events.Add(e);
            if (e.IsTerminal)
                terminal.TrySetResult();
        }

        public async Task<List<ExecutionEvent>> UntilTerminalAsync()
        {
            await terminal.Task.WaitAsync(Bound, Ct);
            lock (events)
                return [.. events];
        }
    }
}
