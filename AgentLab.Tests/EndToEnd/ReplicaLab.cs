using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using AgentLab.ModelSimulator;
using AgentLab.Tests.Support;
using Microsoft.EntityFrameworkCore;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// What two Backend replicas share, started once per test class: the simulator (in-process, so a test can read its
/// counters: a model call aborted, none in flight), LabService as its own process, and a private Garnet. Each test
/// then starts its own pair of Backend processes on a fresh database (<see cref="StartReplicasAsync"/>).
/// </summary>
public sealed class ReplicaLab : IAsyncLifetime
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>Tokens every 25 ms: an orchestrator run lasts a few seconds, so a client connects in the middle of it.</summary>
    public const string StreamingModel = "streaming:7b";

    /// <summary>Tokens every 300 ms: a run that would take a minute, for cancelling.</summary>
    public const string LongModel = "long:7b";

    public SimulatorHost Simulator { get; private set; } = null!;

    public ServiceProcess Lab { get; private set; } = null!;

    public RedisServer Redis { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = new SimulatorOptions { TokenLatencyMs = 1, TimeToFirstTokenMs = 1, LoadDurationMs = 0, PullStepDelayMs = 0 };
        options.Models.Add(new SimulatedModel { Name = StreamingModel, TokenLatencyMs = 25, Capabilities = ["completion", "tools"] });
        options.Models.Add(new SimulatedModel { Name = LongModel, TokenLatencyMs = 300, Capabilities = ["completion", "tools"] });
        Simulator = await SimulatorHost.StartAsync(options, ct).WaitAsync(Bound, ct);
        var labEnvironment = Quiet(new()
        {
            ["ConnectionStrings__ollama"] = $"Endpoint={Simulator.BaseAddress}",
        });
        foreach (var (key, value) in TestTokens.LabServiceEnvironment)
            labEnvironment[key] = value;
        var starting = ServiceProcess.StartAsync("AgentLab.LabService", "/health", labEnvironment, [], ct);
        // The first Garnet on a fresh machine restores the tool (RedisServer allows it minutes).
        Redis = await RedisServer.StartAsync(RedisKind.Garnet, ct).WaitAsync(TimeSpan.FromMinutes(4), ct);
        Lab = await starting.WaitAsync(TimeSpan.FromSeconds(60), ct);
    }

    /// <summary>A fresh database and two Backend processes on it and on the same Redis, each on its own port.</summary>
    public async Task<Replicas> StartReplicasAsync(CancellationToken ct)
    {
        var database = await SharedPostgres.CreateDatabaseAsync(ct).WaitAsync(Bound, ct);
        var environment = Quiet(new()
        {
            ["ConnectionStrings__agentlabdb"] = database.ConnectionString,
            ["ConnectionStrings__redis"] = Redis.ConnectionString,
            ["services__labservice__http__0"] = Lab.BaseAddress.ToString().TrimEnd('/'),
            ["Retention__Enabled"] = "false",
            // Limits no test here means to reach (the replicas poll as test-user); RateLimitTests covers them.
            ["RateLimits__PerSubjectPerMinute"] = "1000000",
            ["RateLimits__PerIpPerMinute"] = "1000000",
            ["RateLimits__ExecutionsPerSubjectPerMinute"] = "1000000",
            ["RateLimits__MaxConcurrentExecutionsPerSubject"] = "100000",
        });
        foreach (var (key, value) in TestTokens.Environment)
            environment[key] = value;
        var a = ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", environment, [], ct);
        var b = ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", environment, [], ct);
        try
        {
            // Both start at once: a Debug Backend takes a few seconds on a loaded machine.
            await Task.WhenAll(a, b).WaitAsync(TimeSpan.FromSeconds(60), ct);
        }
        catch
        {
            foreach (var started in new[] { a, b }.Where(t => t.IsCompletedSuccessfully))
                await started.Result.DisposeAsync();
            await database.DisposeAsync();
            throw;
        }
        return new Replicas(database, a.Result, b.Result);
    }

    public async ValueTask DisposeAsync()
    {
        if (Lab is not null)
            await Lab.DisposeAsync();
        if (Redis is not null)
            await Redis.DisposeAsync();
        if (Simulator is not null)
            await Simulator.DisposeAsync();
    }

    private static Dictionary<string, string> Quiet(Dictionary<string, string> environment)
    {
        environment["Logging__LogLevel__Default"] = "Warning";
        environment["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning";
        return environment;
    }
}

/// <summary>Two Backend processes (A and B) on one database and one Redis.</summary>
public sealed class Replicas(TestDatabase database, ServiceProcess a, ServiceProcess b) : IAsyncDisposable
{
    public TestDatabase Database => database;

    public ServiceProcess ProcessA => a;

    public ServiceProcess ProcessB => b;

    public HttpClient A { get; } = new HttpClient { BaseAddress = a.BaseAddress, Timeout = TimeSpan.FromSeconds(30) }.As();

    public HttpClient B { get; } = new HttpClient { BaseAddress = b.BaseAddress, Timeout = TimeSpan.FromSeconds(30) }.As();

    /// <summary>Both processes' last output lines, for a failure message.</summary>
    public string RecentOutput => $"--- Backend A ---{Environment.NewLine}{a.RecentOutput}{Environment.NewLine}--- Backend B ---{Environment.NewLine}{b.RecentOutput}";

    /// <summary>Submits <paramref name="body"/> to replica A with <c>"mode": "async"</c> and returns the execution id.</summary>
    public async Task<Guid> SubmitAsyncToA(string body, CancellationToken ct)
    {
        using var response = await A.PostAsync("/api/v1/execute", new StringContent(body, Encoding.UTF8, "application/json"), ct)
            .WaitAsync(ReplicaLab.Bound, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"submit answered {(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("execution_id").GetGuid();
    }

    /// <summary>The stored log of <paramref name="id"/> (<c>execution_events</c>), in seq order.</summary>
    public async Task<List<(long Seq, string Type, string? Node)>> StoredEventsAsync(Guid id, CancellationToken ct)
    {
        await using var db = database.CreateContext();
        var rows = await db.Events.Where(e => e.ExecutionId == id).OrderBy(e => e.Seq)
            .Select(e => new { e.Seq, e.Type, e.Node }).ToListAsync(ct).WaitAsync(ReplicaLab.Bound, ct);
        return rows.Select(r => (r.Seq, r.Type, r.Node)).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        A.Dispose();
        B.Dispose();
        await a.DisposeAsync();
        await b.DisposeAsync();
        await database.DisposeAsync();
    }
}

/// <summary>One event as a stream client received it: the raw JSON and the fields a test compares.</summary>
public sealed record ReceivedEvent(string Json, long Seq, string Type, string? Node)
{
    public static ReceivedEvent Parse(string json)
    {
        var root = JsonDocument.Parse(json).RootElement;
        return new ReceivedEvent(json, root.GetProperty("seq").GetInt64(), root.GetProperty("type").GetString()!,
            root.TryGetProperty("node", out var node) && node.ValueKind == JsonValueKind.String ? node.GetString() : null);
    }
}

/// <summary>A WebSocket stream client that keeps every text frame until the server closes.</summary>
public sealed class EventSocket : IAsyncDisposable
{
    private readonly ClientWebSocket socket = TestTokens.Socket();
    private readonly List<ReceivedEvent> received = [];
    private readonly TaskCompletionSource<ReceivedEvent> firstToken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource firstFrame = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task<WebSocketCloseStatus?>? reading;

    /// <summary>Every frame so far (a copy).</summary>
    public IReadOnlyList<ReceivedEvent> Received
    {
        get { lock (received) return [.. received]; }
    }

    /// <summary>Completes with the first <c>token</c> event.</summary>
    public Task<ReceivedEvent> FirstToken => firstToken.Task;

    /// <summary>Completes when the first frame arrived.</summary>
    public Task FirstFrame => firstFrame.Task;

    /// <summary>Connects to <c>/api/v1/ws/executions/{id}</c> on <paramref name="backend"/> and starts reading.</summary>
    public static async Task<EventSocket> ConnectAsync(Uri backend, Guid id, CancellationToken ct)
    {
        var client = new EventSocket();
        var uri = new UriBuilder(new Uri(backend, $"/api/v1/ws/executions/{id}")) { Scheme = "ws" }.Uri;
        await client.socket.ConnectAsync(uri, ct).WaitAsync(ReplicaLab.Bound, ct);
        client.reading = client.ReadAsync(ct);
        return client;
    }

    /// <summary>Waits (bounded) for the server's close; returns its close status.</summary>
    public Task<WebSocketCloseStatus?> ClosedAsync(TimeSpan bound, CancellationToken ct) => reading!.WaitAsync(bound, ct);

    private async Task<WebSocketCloseStatus?> ReadAsync(CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, ct);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                return result.CloseStatus;
            }
            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage)
                continue;
            var e = ReceivedEvent.Parse(Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length));
            message.SetLength(0);
            lock (received)
                received.Add(e);
            firstFrame.TrySetResult();
            if (e.Type == "token")
                firstToken.TrySetResult(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        socket.Abort();
        if (reading is not null)
        {
            try
            {
                await reading.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException)
            {
                // Aborted on purpose.
            }
        }
        socket.Dispose();
        firstToken.TrySetCanceled();
    }
}

/// <summary>Reads a whole SSE stream (<c>GET /api/v1/executions/{id}/events</c>) until the server ends it.</summary>
public static class EventReplay
{
    public static async Task<List<SseItem<string>>> ReadSseAsync(HttpClient backend, Guid id, CancellationToken ct)
    {
        // One bound for the whole stream: a server that never ends it fails the test instead of hanging it.
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(ReplicaLab.Bound);
        ct = bounded.Token;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/executions/{id}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await backend.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).WaitAsync(ReplicaLab.Bound, ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var items = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(body).EnumerateAsync(ct))
            items.Add(item);
        return items;
    }
}
