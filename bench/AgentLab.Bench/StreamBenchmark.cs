using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;
using AgentLab.Backend.Events;
using AgentLab.Tests.Support;

namespace AgentLab.Bench;

/// <summary>Settings of <c>stream</c> (see Program.cs for the flags).</summary>
internal sealed record StreamBenchSettings(int Subscribers, int Idle, int IdleExecutions, int TtftRuns, int TokenLatencyMs,
    int SimulatorTtftMs, int HeartbeatSeconds, int ConnectConcurrency);

/// <summary>
/// Issue 6's figures for live streaming, with every server a separate Release process (the simulator, LabService, a
/// throw-away PostgreSQL, Garnet, and two Backend replicas on the same database and Redis):
/// 1. N WebSocket subscribers on ONE execution, on replica B while replica A runs it: B's memory per connection and
///    the delay from publish (the event arriving on its Redis channel, seen by this process's own subscriber) to
///    each client's frame;
/// 2. M idle subscribers (executions that produce nothing: one waiting for its first token, the rest queued behind
///    it): memory per connection, and that all stay open past the heartbeat;
/// 3. time to first token through the Backend (submit async + WebSocket) against the simulator's own stream.
/// Everything shares the machine's cores: read it as what this machine does, not as a server's capacity.
/// </summary>
internal static class StreamBenchmark
{
    private const string Prompt = "Dime 3 números primos";

    /// <summary>A simulated model that never sends its first token (within the benchmark): a silent execution.</summary>
    private const string SilentModel = "silent:7b";

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(180);

    public static async Task<int> RunAsync(StreamBenchSettings s)
    {
        var ct = CancellationToken.None;
        var openFiles = MachineLimits.OpenFiles();
        // This process holds every client socket; the Backend (which inherits the limit) holds the other end of each.
        var needed = Math.Max(s.Subscribers, s.Idle) + 500;
        Console.WriteLine($"Machine: {Environment.ProcessorCount} cores; open files (soft) {openFiles}; ephemeral ports {MachineLimits.PortRange()}.");
        if (openFiles >= 0 && openFiles < needed)
        {
            Console.Error.WriteLine($"ulimit -n is {openFiles}, but {needed} sockets are needed at once (client side, and as many in the " +
                $"Backend). Raise it (ulimit -n {needed * 2}) or lower --subscribers/--idle.");
            return 2;
        }

        var quiet = new Dictionary<string, string>
        {
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        Console.WriteLine("Starting the simulator, LabService, PostgreSQL, Garnet and two Backend replicas as separate processes...");
        await using var simulator = await ServiceProcess.StartAsync("AgentLab.ModelSimulator", "/", quiet,
        [
            $"--Simulator:TimeToFirstTokenMs={s.SimulatorTtftMs}", $"--Simulator:TokenLatencyMs={s.TokenLatencyMs}", "--Simulator:LoadDurationMs=0",
            $"--Simulator:Models:0:Name={SilentModel}", "--Simulator:Models:0:Fault=slow_first_token:3600000",
        ], ct);
        await using var lab = await ServiceProcess.StartAsync("AgentLab.LabService", "/health",
            new Dictionary<string, string>(quiet)
            {
                ["ConnectionStrings__ollama"] = $"Endpoint={simulator.BaseAddress}",
                ["Ollama__FirstTokenTimeoutSeconds"] = "3600",
            }.With(BenchAuth.LabServiceEnvironment), [], ct);
        await using var database = await BenchDatabase.StartAsync(null, keep: false, [], ct);
        await using var redis = await Garnet.StartAsync(ct);
        var backendEnvironment = new Dictionary<string, string>(quiet)
        {
            ["services__labservice__http__0"] = lab.BaseAddress.ToString().TrimEnd('/'),
            ["ConnectionStrings__agentlabdb"] = database.ConnectionString,
            ["ConnectionStrings__redis"] = redis.ConnectionString,
            ["Retention__Enabled"] = "false",
            ["Streams__HeartbeatSeconds"] = s.HeartbeatSeconds.ToString(CultureInfo.InvariantCulture),
            ["Streams__MaxConnections"] = "100000",
            // One run at a time on A: a silent execution holds the worker, so others wait queued (and silent) until
            // it is cancelled; the fan-out run then starts with every subscriber already connected.
            ["Execution__MaxConcurrency"] = "1",
            ["Execution__QueueCapacity"] = "1000",
        }.With(BenchAuth.BackendEnvironment);   // the key of the bench's token; rate limits no run reaches
        await using var a = await ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", backendEnvironment, [], ct);
        await using var b = await ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", backendEnvironment, [], ct);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) }.WithToken();
        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(30) });
        var api = new Api(http, invoker, a.BaseAddress, b.BaseAddress);

        Console.WriteLine($"Simulator: first token {s.SimulatorTtftMs} ms, {s.TokenLatencyMs} ms per token. Backend heartbeat {s.HeartbeatSeconds} s. " +
            $"PIDs: Backend A {a.ProcessId}, Backend B {b.ProcessId}.");
        Console.WriteLine();

        var ttft = await TimeToFirstTokenAsync(api, simulator.BaseAddress, s, ct);
        var fanOut = await FanOutAsync(api, a, b, redis.ConnectionString, s, ct);
        var idle = await IdleAsync(api, b.ProcessId, s, ct);

        Console.WriteLine();
        Console.WriteLine("=== Results ===");
        Console.WriteLine($"1) {s.Subscribers:N0} WebSocket subscribers on one orchestrator execution (clients on replica B, run on replica A)");
        Console.WriteLine($"   connected in {fanOut.ConnectSeconds:0.0} s; {fanOut.Events} events each; complete, in order, closed 1000: {fanOut.Complete:N0}/{s.Subscribers:N0}");
        Console.WriteLine($"   Backend B RSS {Mb(fanOut.RssBefore)} -> {Mb(fanOut.RssConnected)} connected ({Kb((fanOut.RssConnected - fanOut.RssBefore) / (double)s.Subscribers)} per connection); " +
            $"{Mb(fanOut.RssAfterRun)} after the run");
        Console.WriteLine($"   publish -> client delay over {fanOut.Delays.Count:N0} frames: p50 {fanOut.Delays.P(0.50):0.00} ms, p95 {fanOut.Delays.P(0.95):0.00} ms, " +
            $"p99 {fanOut.Delays.P(0.99):0.00} ms, max {fanOut.Delays.Max:0.00} ms");
        Console.WriteLine($"   first subscriber to get each event ({fanOut.FirstDelays.Count} events): p50 {fanOut.FirstDelays.P(0.50):0.00} ms, " +
            $"p99 {fanOut.FirstDelays.P(0.99):0.00} ms, max {fanOut.FirstDelays.Max:0.00} ms");
        Console.WriteLine($"   CPU over the {fanOut.RunSeconds:0.0} s run: Backend B {fanOut.CpuB:0.00} s, Backend A {fanOut.CpuA:0.00} s, " +
            $"the clients (this process) {fanOut.CpuClients:0.00} s, of {Environment.ProcessorCount * fanOut.RunSeconds:0.0} core-seconds");
        Console.WriteLine($"2) {s.Idle:N0} idle WebSocket connections ({s.IdleExecutions} silent executions: 1 waiting for its first token, {s.IdleExecutions - 1} queued)");
        Console.WriteLine($"   connected in {idle.ConnectSeconds:0.0} s; Backend B RSS {Mb(idle.RssBefore)} -> {Mb(idle.RssConnected)} " +
            $"({Kb((idle.RssConnected - idle.RssBefore) / (double)s.Idle)} per connection); {Mb(idle.RssAfterWait)} after {idle.WaitSeconds:0} s; " +
            $"Backend B file descriptors {idle.DescriptorsBefore:N0} -> {idle.DescriptorsConnected:N0}");
        Console.WriteLine($"   still open after {idle.WaitSeconds:0} s (heartbeat {s.HeartbeatSeconds} s): {idle.StillOpen:N0}/{s.Idle:N0}; " +
            $"control frames the server sent to one idle socket meanwhile: {idle.ProbePings} ping, {idle.ProbePongs} pong{(idle.ProbeClosed ? " (it closed!)" : "")}");
        Console.WriteLine($"3) Time to first token, {s.TtftRuns} runs each, interleaved (same prompt and model, {TtftMaxTokens} tokens):");
        Console.WriteLine($"   {"path",-58} {"p50 ms",8} {"p95 ms",8}");
        Console.WriteLine($"   {"simulator POST /api/chat stream:true -> first chunk",-58} {ttft.Simulator.P(0.50),8:0.0} {ttft.Simulator.P(0.95),8:0.0}");
        Console.WriteLine($"   {"Backend submit async + WebSocket -> first token event",-58} {ttft.Backend.P(0.50),8:0.0} {ttft.Backend.P(0.95),8:0.0}");
        Console.WriteLine($"   {"  of which: POST /api/v1/execute -> 202",-58} {ttft.Submit.P(0.50),8:0.0} {ttft.Submit.P(0.95),8:0.0}");
        Console.WriteLine($"   {"  of which: 202 -> WebSocket open",-58} {ttft.Connect.P(0.50),8:0.0} {ttft.Connect.P(0.95),8:0.0}");
        Console.WriteLine($"   Backend over simulator: p50 {ttft.Backend.P(0.50) - ttft.Simulator.P(0.50):+0.0;-0.0} ms, p95 {ttft.Backend.P(0.95) - ttft.Simulator.P(0.95):+0.0;-0.0} ms");
        var ok = fanOut.Complete == s.Subscribers && idle.StillOpen == s.Idle;
        if (!ok)
            Console.WriteLine("Some streams were incomplete or closed early: see above. Exit code 1.");
        return ok ? 0 : 1;
    }

    private const int TtftMaxTokens = 8;

    private static async Task<(Samples Simulator, Samples Backend, Samples Submit, Samples Connect)> TimeToFirstTokenAsync(
        Api api, Uri simulator, StreamBenchSettings s, CancellationToken ct)
    {
        var chat = "{\"model\":\"mistral:7b\",\"messages\":[{\"role\":\"user\",\"content\":\"" + Prompt + "\"}],\"stream\":true,\"options\":{\"num_ctx\":4096,\"num_predict\":" + TtftMaxTokens + "}}";
        var execute = "{\"prompt\":\"" + Prompt + "\",\"model\":\"mistral7b\",\"mode\":\"async\",\"parameters\":{\"max_tokens\":" + TtftMaxTokens + "}}";
        var warmUp = Math.Min(10, Math.Max(3, s.TtftRuns / 3));
        Console.WriteLine($"Time to first token: {warmUp} warm-up runs, then {s.TtftRuns} of each path, interleaved...");
        List<double> sim = [], backend = [], submit = [], connect = [];
        for (var i = 0; i < warmUp + s.TtftRuns; i++)
        {
            var simulated = await SimulatorFirstChunkAsync(api.Http, new Uri(simulator, "/api/chat"), chat, ct);
            var (total, accepted, opened) = await BackendFirstTokenAsync(api, execute, ct);
            if (i < warmUp)
                continue;
            sim.Add(simulated);
            backend.Add(total);
            submit.Add(accepted);
            connect.Add(opened);
        }
        return (new Samples(sim), new Samples(backend), new Samples(submit), new Samples(connect));
    }

    private static async Task<double> SimulatorFirstChunkAsync(HttpClient http, Uri chat, string body, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        using var request = new HttpRequestMessage(HttpMethod.Post, chat) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        double? first = null;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (first is null && line.Length > 0 && JsonDocument.Parse(line).RootElement.TryGetProperty("message", out var message)
                && message.TryGetProperty("content", out var content) && content.GetString() is { Length: > 0 })
            {
                first = Samples.Ms(start, Stopwatch.GetTimestamp());
            }
        }
        // Read to the end, as the Backend path does: the next run starts on an idle simulator.
        return first ?? throw new InvalidOperationException("The simulator's stream had no content.");
    }

    private static async Task<(double Total, double Submit, double Connect)> BackendFirstTokenAsync(Api api, string execute, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var id = await api.SubmitAsync(api.A, execute, ct);
        var accepted = Stopwatch.GetTimestamp();
        var subscriber = await StreamSubscriber.ConnectAsync(api.Invoker, api.A, id, record: false, ct);
        var opened = Stopwatch.GetTimestamp();
        try
        {
            var firstToken = await subscriber.FirstToken.WaitAsync(TimeSpan.FromSeconds(60), ct);
            // Follow the run to its end, so the next one does not queue behind it on A's one worker.
            await subscriber.Reading.WaitAsync(TimeSpan.FromSeconds(60), ct);
            if (subscriber.LastType != "execution_completed")
                throw new InvalidOperationException($"Execution {id} ended its stream with {subscriber.LastType ?? "nothing"}.");
            return (Samples.Ms(start, firstToken), Samples.Ms(start, accepted), Samples.Ms(accepted, opened));
        }
        finally
        {
            subscriber.Abort();
        }
    }

    private sealed record FanOutResult(double ConnectSeconds, long Events, int Complete, long RssBefore, long RssConnected, long RssAfterRun,
        Samples Delays, Samples FirstDelays, double RunSeconds, double CpuB, double CpuA, double CpuClients);

    private static async Task<FanOutResult> FanOutAsync(Api api, ServiceProcess a, ServiceProcess b, string redis, StreamBenchSettings s, CancellationToken ct)
    {
        // Warm B's stream path (JIT, pools) on finished executions, so the memory read before is not first-use cost.
        Console.WriteLine($"Fan-out: {s.Subscribers:N0} subscribers on replica B to one execution queued on replica A...");
        var gate = await StartSilentAsync(api, ct);
        var run = await api.SubmitAsync(api.A,
            "{\"prompt\":\"Explain how a write-ahead log works\",\"model\":\"mistral7b\",\"execution_type\":\"orchestrator\",\"mode\":\"async\"}", ct);
        await WarmUpAsync(api, run, ct);
        await using var stamps = await PublishStamps.SubscribeAsync(redis, EventChannels.ForExecution(run));

        var backendPid = b.ProcessId;
        var rssBefore = await SettledRssAsync(backendPid);
        var clock = Stopwatch.StartNew();
        var subscribers = await ConnectManyAsync(api, api.B, Enumerable.Repeat(run, s.Subscribers).ToArray(), record: true, s.ConnectConcurrency, ct);
        // Every subscriber has its replay (execution_queued) before the run starts: all later events reach them live.
        await Task.WhenAll(subscribers.Select(x => x.FirstFrame)).WaitAsync(Bound, ct);
        var connectSeconds = clock.Elapsed.TotalSeconds;
        var rssConnected = await SettledRssAsync(backendPid);

        Console.WriteLine($"  {subscribers.Length:N0} connected in {connectSeconds:0.0} s; releasing the run (cancelling the silent execution ahead of it)...");
        // CPU while the run streams: who of the three (the replica fanning out, the one running, these clients) is busy.
        var cpuBefore = (B: b.TotalProcessorTime, A: a.TotalProcessorTime, Clients: Process.GetCurrentProcess().TotalProcessorTime);
        var runClock = Stopwatch.StartNew();
        await api.CancelAsync(api.A, gate, ct);
        await Task.WhenAll(subscribers.Select(x => x.Reading)).WaitAsync(Bound, ct);
        var runSeconds = runClock.Elapsed.TotalSeconds;
        var cpuB = (b.TotalProcessorTime - cpuBefore.B).TotalSeconds;
        var cpuA = (a.TotalProcessorTime - cpuBefore.A).TotalSeconds;
        var cpuClients = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore.Clients).TotalSeconds;
        var rssAfterRun = MachineLimits.Rss(backendPid);

        var events = subscribers.Max(x => x.LastSeq);
        // The lab graph's simulated validator may reject the answer: execution_failed ends the stream as well.
        var complete = subscribers.Count(x => x.InOrder && x.LastSeq == events && x.LastType is { } type && Backend.Data.EventTypes.IsTerminal(type)
            && x.CloseStatus == WebSocketCloseStatus.NormalClosure);
        var published = stamps.Stamps;
        var delays = new Samples(subscribers.SelectMany(x => x.Frames)
            .Where(f => published.ContainsKey(f.Seq))
            .Select(f => Samples.Ms(published[f.Seq], f.Stamp)));
        // The first subscriber to get each event: the path's own delay, without the wait for the 999 others.
        var firstDelays = new Samples(subscribers.SelectMany(x => x.Frames)
            .Where(f => published.ContainsKey(f.Seq))
            .GroupBy(f => f.Seq)
            .Select(g => Samples.Ms(published[g.Key], g.Min(f => f.Stamp))));
        var failed = subscribers.FirstOrDefault(x => x.Error is not null);
        if (failed is not null)
            Console.WriteLine($"  a subscriber failed: {failed.Error!.GetType().Name}: {failed.Error.Message}");
        Console.WriteLine($"  run finished ({subscribers[0].LastType}): {events} events, {published.Count} seen on Redis by the benchmark.");
        foreach (var subscriber in subscribers)
            subscriber.Abort();
        return new FanOutResult(connectSeconds, events, complete, rssBefore, rssConnected, rssAfterRun, delays, firstDelays,
            runSeconds, cpuB, cpuA, cpuClients);
    }

    private sealed record IdleResult(double ConnectSeconds, long RssBefore, long RssConnected, long RssAfterWait, double WaitSeconds,
        int StillOpen, int DescriptorsBefore, int DescriptorsConnected, int ProbePings, int ProbePongs, bool ProbeClosed);

    private static async Task<IdleResult> IdleAsync(Api api, int backendPid, StreamBenchSettings s, CancellationToken ct)
    {
        Console.WriteLine($"Idle: {s.Idle:N0} subscribers on replica B to {s.IdleExecutions} silent executions...");
        var silent = new List<Guid> { await StartSilentAsync(api, ct) };
        for (var i = 1; i < s.IdleExecutions; i++)
            silent.Add(await api.SubmitAsync(api.A, SilentExecution, ct));   // queued behind the first

        var rssBefore = await SettledRssAsync(backendPid);
        var descriptorsBefore = MachineLimits.OpenDescriptors(backendPid);
        var clock = Stopwatch.StartNew();
        var targets = Enumerable.Range(0, s.Idle).Select(i => silent[i % silent.Count]).ToArray();
        var subscribers = await ConnectManyAsync(api, api.B, targets, record: false, s.ConnectConcurrency, ct);
        await Task.WhenAll(subscribers.Select(x => x.FirstFrame)).WaitAsync(Bound, ct);
        var connectSeconds = clock.Elapsed.TotalSeconds;
        var rssConnected = await SettledRssAsync(backendPid);
        var descriptorsConnected = MachineLimits.OpenDescriptors(backendPid);

        // Past two heartbeats: a server or a proxy that dropped idle connections would have done it by now.
        var wait = TimeSpan.FromSeconds(s.HeartbeatSeconds * 2 + 2);
        Console.WriteLine($"  {subscribers.Length:N0} connected in {connectSeconds:0.0} s; waiting {wait.TotalSeconds:0} s...");
        // One more, on a bare socket, counts the control frames the server sends meanwhile: its heartbeat.
        using var probe = await RawWebSocketProbe.ConnectAsync(api.B, silent[0], ct);
        await probe.ListenAsync(wait);
        var stillOpen = subscribers.Count(x => x.IsOpen);
        var rssAfterWait = MachineLimits.Rss(backendPid);
        var closed = subscribers.FirstOrDefault(x => !x.IsOpen);
        if (closed is not null)
            Console.WriteLine($"  a connection closed early: status {closed.CloseStatus?.ToString() ?? "none"}, {closed.Error?.Message ?? "no error"}");
        foreach (var subscriber in subscribers)
            subscriber.Abort();
        foreach (var id in silent)
            await api.CancelAsync(api.A, id, ct);
        return new IdleResult(connectSeconds, rssBefore, rssConnected, rssAfterWait, wait.TotalSeconds, stillOpen, descriptorsBefore, descriptorsConnected,
            probe.Pings, probe.Pongs, probe.Closed);
    }

    private static readonly string SilentExecution =
        "{\"prompt\":\"Say nothing yet\",\"model\":\"" + SilentModel + "\",\"mode\":\"async\",\"parameters\":{\"max_tokens\":1}}";

    /// <summary>Submits a silent execution to A and waits until it runs (and so holds A's one worker).</summary>
    private static async Task<Guid> StartSilentAsync(Api api, CancellationToken ct)
    {
        var id = await api.SubmitAsync(api.A, SilentExecution, ct);
        var clock = Stopwatch.StartNew();
        while (await api.StatusAsync(api.A, id, ct) != "running")
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new TimeoutException($"The silent execution {id} did not start within 30 s.");
            await Task.Delay(50, ct);
        }
        return id;
    }

    /// <summary>A few short-lived subscribers on B, so the stream path is compiled before memory is read.</summary>
    private static async Task WarmUpAsync(Api api, Guid id, CancellationToken ct)
    {
        for (var round = 0; round < 3; round++)
        {
            var warm = await ConnectManyAsync(api, api.B, Enumerable.Repeat(id, 50).ToArray(), record: false, 16, ct);
            await Task.WhenAll(warm.Select(x => x.FirstFrame)).WaitAsync(Bound, ct);
            foreach (var subscriber in warm)
                subscriber.Abort();
        }
        await Task.Delay(500, ct);
    }

    private static async Task<StreamSubscriber[]> ConnectManyAsync(Api api, Uri backend, Guid[] targets, bool record, int concurrency, CancellationToken ct)
    {
        var subscribers = new StreamSubscriber[targets.Length];
        await Parallel.ForAsync(0, targets.Length, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = ct },
            async (i, token) => subscribers[i] = await StreamSubscriber.ConnectAsync(api.Invoker, backend, targets[i], record, token));
        return subscribers;
    }

    /// <summary>RSS once the process has had a moment to finish what connecting started (a second, twice).</summary>
    private static async Task<long> SettledRssAsync(int pid)
    {
        await Task.Delay(1000);
        var first = MachineLimits.Rss(pid);
        await Task.Delay(1000);
        return Math.Max(first, MachineLimits.Rss(pid));
    }

    private static string Mb(long bytes) => $"{bytes / 1048576.0:0.0} MB";

    private static string Kb(double bytes) => $"{bytes / 1024.0:0.0} KB";

    /// <summary>The Backend's HTTP API as the benchmark uses it.</summary>
    private sealed record Api(HttpClient Http, HttpMessageInvoker Invoker, Uri A, Uri B)
    {
        public async Task<Guid> SubmitAsync(Uri backend, string body, CancellationToken ct)
        {
            using var response = await Http.PostAsync(new Uri(backend, "/api/v1/execute"), new StringContent(body, Encoding.UTF8, "application/json"), ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode != HttpStatusCode.Accepted)
                throw new InvalidOperationException($"POST /api/v1/execute answered {(int)response.StatusCode}: {text}");
            return JsonDocument.Parse(text).RootElement.GetProperty("execution_id").GetGuid();
        }

        public async Task<string?> StatusAsync(Uri backend, Guid id, CancellationToken ct)
        {
            using var response = await Http.GetAsync(new Uri(backend, $"/api/v1/executions/{id}"), ct);
            response.EnsureSuccessStatusCode();
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("status").GetString();
        }

        public async Task CancelAsync(Uri backend, Guid id, CancellationToken ct)
        {
            using var response = await Http.PostAsync(new Uri(backend, $"/api/v1/executions/{id}/cancel"), null, ct);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"POST /api/v1/executions/{id}/cancel answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
        }
    }

    /// <summary>Garnet from the AppHost's recipe, on a free port, stopped at the end.</summary>
    internal sealed class Garnet(ProcessLauncher launcher, SupervisedProcess process, string connectionString) : IAsyncDisposable
    {
        public string ConnectionString => connectionString;

        public static async Task<Garnet> StartAsync(CancellationToken ct)
        {
            using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var recipe = new GarnetRecipe(port, RepoRoot());
            await recipe.PrepareAsync(ct);
            var launcher = new ProcessLauncher();
            var process = launcher.Start(recipe.CreateProcessSpec(), (_, _) => { });
            var clock = Stopwatch.StartNew();
            while (!await recipe.IsReadyAsync(ct))
            {
                if (process.Exited.IsCompleted || clock.Elapsed > TimeSpan.FromSeconds(30))
                    throw new InvalidOperationException("Garnet did not start.");
                await Task.Delay(50, ct);
            }
            Console.WriteLine($"Started Garnet on port {port}.");
            return new Garnet(launcher, process, recipe.ConnectionString);
        }

        public async ValueTask DisposeAsync()
        {
            await process.StopAsync(TimeSpan.FromSeconds(5));
            process.Dispose();
            launcher.Dispose();
        }

        private static string RepoRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "AgentLab.sln")))
                    return dir.FullName;
            }
            throw new DirectoryNotFoundException("AgentLab.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
