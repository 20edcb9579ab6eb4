using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.Backend;
using AgentLab.LabService;
using AgentLab.LabService.Models;
using AgentLab.LabService.Orchestration;
using AgentLab.LabService.Orchestration.LabGraph;
using AgentLab.LabService.Orchestration.Runtime;
using AgentLab.ModelSimulator;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;
using ChatResponse = Microsoft.Extensions.AI.ChatResponse;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace AgentLab.Bench;

/// <summary>
/// What the orchestrator costs on top of the model calls it makes: the four-worker lab graph through GraphRunner
/// against the very same model calls made directly on the same <see cref="IChatClient"/>, then the graph through
/// <c>POST /orchestrate/</c> on a real socket, then <c>POST /api/v1/execute</c> (orchestrator) on the Backend, which
/// records the execution, streams the same graph from LabService, writes it node by node and finishes in one
/// transaction; with the simulator at zero token latency so that only our code shows.
/// </summary>
/// <remarks>
/// Everything runs in this process (simulator, LabService and the Backend on Kestrel, the graph; only PostgreSQL is a
/// throw-away server of its own), so the in-process graph and the
/// HTTP one share the JIT'd code and the machine. The paths are interleaved run by run, with the order flipped every
/// other run, so noise and drift hit them alike; the overhead is the paired difference of each run.
/// </remarks>
internal static class OrchestrateBenchmark
{
    private const string Prompt = "Dime 3 números primos";
    private const string Model = "mistral7b";
    private const int MicroSteps = 1000;

    /// <param name="seed">Fixes the simulator's replies; the default 40 walks the longest path of the lab graph for this
    /// prompt: analyzer → executor → validator (revise) twice, then pass: 7 transitions, 7 model calls.</param>
    /// <param name="connection">A PostgreSQL server for the Backend's database (a new database, dropped at the end), or
    /// null for a throw-away server.</param>
    public static async Task<int> RunAsync(int runs, TimeSpan warmUp, long seed, string? connection)
    {
        var ct = CancellationToken.None;
        Console.WriteLine("Starting the simulator (zero latency) and LabService on Kestrel, both in-process...");
        await using var simulator = await SimulatorHost.StartAsync(new SimulatorOptions
        {
            TimeToFirstTokenMs = 0, TokenLatencyMs = 0, LoadDurationMs = 0, PullStepDelayMs = 0,
        }, ct);
        await using var factory = new WebApplicationFactory<LabServiceMarker>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment(Environments.Production);
            builder.UseSetting("ConnectionStrings:ollama", $"Endpoint={simulator.BaseAddress}");
            builder.UseSetting("ServiceAuth:Key", BenchAuth.ServiceKey);
            builder.UseSetting("urls", "http://127.0.0.1:0");
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
            builder.UseSetting("Logging:LogLevel:Microsoft.AspNetCore", "Warning");
        });
        factory.UseKestrel();
        factory.StartServer();
        var labAddress = AddressOf(factory.Services);

        // The Backend as deployed, minus Aspire: LabService found through service discovery, its own database (migrated
        // by the Backend at start), no retention sweep competing with the runs.
        await using var database = await BenchDatabase.StartAsync(connection, keep: false, [], ct);
        Console.WriteLine("Starting the Backend on Kestrel, in-process...");
        await using var backend = new WebApplicationFactory<BackendMarker>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment(Environments.Production);
            builder.UseSetting("urls", "http://127.0.0.1:0");
            builder.UseSetting("ConnectionStrings:agentlabdb", database.ConnectionString);
            builder.UseSetting("services:labservice:http:0", labAddress.ToString());
            builder.UseSetting("Retention:Enabled", "false");
            foreach (var (key, value) in BenchAuth.BackendSettings)
                builder.UseSetting(key, value);     // the bench token's key, the service key, limits no run reaches
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
            // EF logs the migrator's first look for a history table that a fresh database cannot have yet as a failure.
            builder.UseSetting("Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command", "Critical");
            builder.UseSetting("Logging:LogLevel:Microsoft.AspNetCore", "Warning");
        });
        backend.UseKestrel();
        backend.StartServer();
        var backendAddress = AddressOf(backend.Services);

        var services = factory.Services;
        var paths = new Paths(
            services.GetRequiredService<IChatClient>(),
            services.GetRequiredService<LabGraphFactory>(),
            services.GetRequiredService<IOptions<OrchestrationOptions>>().Value,
            (await services.GetRequiredService<ModelManager>().ResolveAsync(Model, ct)).Name,
            seed,
            Client(labAddress).WithServiceKey(),
            Client(backendAddress).WithToken());

        // Tiered JIT with dynamic PGO keeps recompiling hot paths for seconds after start: measure after it settles.
        Console.WriteLine($"Warming up every path for {warmUp.TotalSeconds:0} s...");
        var warmUpClock = Stopwatch.StartNew();
        var recording = (await paths.GraphAsync(ct)).Calls;
        while (warmUpClock.Elapsed < warmUp)
        {
            recording = (await paths.GraphAsync(ct)).Calls;
            await paths.DirectAsync(recording, ct);
            await paths.HttpAsync(ct);
            await paths.HttpAsync(ct, ndjson: true);
            await paths.BackendAsync(ct);
            await MicroAsync(ct);
        }

        var samples = new List<Sample>(runs);
        for (var i = 0; i < runs; i++)
        {
            // Even runs: graph, direct, HTTP, Backend. Odd runs: Backend, HTTP, direct (the previous run's calls), graph.
            GraphSample graph;
            double direct, http, stream;
            BackendSample viaBackend;
            if (i % 2 == 0)
            {
                graph = await paths.GraphAsync(ct);
                direct = await paths.DirectAsync(graph.Calls, ct);
                http = await paths.HttpAsync(ct);
                stream = await paths.HttpAsync(ct, ndjson: true);
                viaBackend = await paths.BackendAsync(ct);
            }
            else
            {
                viaBackend = await paths.BackendAsync(ct);
                stream = await paths.HttpAsync(ct, ndjson: true);
                http = await paths.HttpAsync(ct);
                direct = await paths.DirectAsync(recording, ct);
                graph = await paths.GraphAsync(ct);
            }
            if (i % 2 == 1 && !SameCalls(recording, graph.Calls))
                graph = graph with { Mismatched = true };
            recording = graph.Calls;
            samples.Add(new Sample(graph, direct, http, stream, viaBackend));
        }

        var micro = new List<double>();
        for (var i = 0; i < Math.Max(20, runs / 5); i++)
            micro.Add(await MicroAsync(ct) * 1000 / MicroSteps);

        Print(samples, micro, runs, warmUp, seed);
        return samples.Any(s => s.Graph.StopCode is not (StopCodes.Completed or StopCodes.Rejected)) ? 1 : 0;
    }

    private static void Print(List<Sample> samples, List<double> micro, int runs, TimeSpan warmUp, long seed)
    {
        var first = samples[0].Graph;
        var transitions = samples.Select(s => s.Graph.Transitions).Distinct().Order().ToList();
        var calls = samples.Select(s => s.Graph.Calls.Count).Distinct().Order().ToList();
        var stops = samples.GroupBy(s => s.Graph.StopCode).Select(g => $"{g.Key} ×{g.Count()}");
        var mismatched = samples.Count(s => s.Graph.Mismatched);

        Console.WriteLine();
        Console.WriteLine($"{Environment.ProcessorCount} cores; simulator at zero token latency; {runs} runs interleaved " +
            $"(order flipped every other run) after a {warmUp.TotalSeconds:0} s warm-up; seed {seed}.");
        Console.WriteLine($"Lab graph '{first.Graph}' ({string.Join(", ", first.Nodes)}, monitor observing), path {first.Path}; " +
            $"{string.Join("/", transitions)} node transitions and {string.Join("/", calls)} model calls per run; stop: {string.Join(", ", stops)}" +
            (mismatched > 0 ? $"; {mismatched} odd runs replayed a call sequence that differed from their own" : "; every replay matched its run's calls") + ".");
        Console.WriteLine();
        Console.WriteLine($"{"path",-46} {"p50",10} {"p95",10}");
        Row("direct model calls (same calls, same client)", samples.Select(s => s.Direct), "ms");
        Row("lab graph in-process (GraphRunner)", samples.Select(s => s.Graph.Ms), "ms");
        Row("  overhead per run (paired graph − direct)", samples.Select(s => s.Graph.Ms - s.Direct), "ms");
        var perTransition = samples.Select(s => (s.Graph.Ms - s.Direct) / s.Graph.Transitions).ToList();
        Row("  overhead per node transition", perTransition, "ms");
        Row("POST /orchestrate/ (Kestrel socket, JSON)", samples.Select(s => s.Http), "ms");
        Row("  HTTP + JSON over in-process (paired)", samples.Select(s => s.Http - s.Graph.Ms), "ms");
        Row("POST /orchestrate/ as NDJSON (the Backend's way)", samples.Select(s => s.Stream), "ms");
        Row("  NDJSON stream over JSON (paired)", samples.Select(s => s.Stream - s.Http), "ms");
        Row("POST /api/v1/execute orchestrator (Backend)", samples.Select(s => s.Backend.Ms), "ms");
        Row("  Backend's added cost (paired − /orchestrate/)", samples.Select(s => s.Backend.Ms - s.Http), "ms");
        Row("  of which over the NDJSON stream (paired)", samples.Select(s => s.Backend.Ms - s.Stream), "ms");
        Row("  Backend's added cost per node written", samples.Select(s => (s.Backend.Ms - s.Http) / s.Backend.Nodes), "ms");
        Row($"runtime alone: no-op graph, {MicroSteps} steps", micro, "µs/transition");
        Console.WriteLine();
        var p50 = Percentile([.. perTransition.Order()], 0.50);
        Console.WriteLine($"Target under 1 ms per transition at p50: {(p50 < 1 ? "met" : "NOT met")} ({p50:0.000} ms).");
        var nodes = samples.Select(s => s.Backend.Nodes).Distinct().Order();
        Console.WriteLine($"Backend: every execution completed with {string.Join("/", nodes)} stored nodes; its added cost is the record, " +
            "the node-by-node writes, the final transaction, its HTTP hop; the NDJSON stream it reads from LabService is measured apart.");
    }

    private static void Row(string name, IEnumerable<double> values, string unit)
    {
        var sorted = values.Order().ToArray();
        Console.WriteLine($"{name,-46} {Percentile(sorted, 0.50),10:0.000} {Percentile(sorted, 0.95),10:0.000}  {unit}");
    }

    private static Uri AddressOf(IServiceProvider services) =>
        new(services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());

    private static HttpClient Client(Uri address) =>
        new(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, UseProxy = false })
        {
            BaseAddress = address, Timeout = TimeSpan.FromSeconds(30),
        };

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static bool SameCalls(IReadOnlyList<RecordedCall> a, IReadOnlyList<RecordedCall> b) =>
        a.Count == b.Count && a.Zip(b).All(pair => pair.First.Messages.Count == pair.Second.Messages.Count
            && pair.First.Messages.Zip(pair.Second.Messages).All(m => m.First.Role == m.Second.Role && m.First.Text == m.Second.Text));

    /// <summary>The runtime alone: one no-op node looping on itself <see cref="MicroSteps"/> times; returns ms.</summary>
    private static async Task<double> MicroAsync(CancellationToken ct)
    {
        var noop = new DelegateNode("noop", static (_, _, _) => ValueTask.FromResult(new NodeResult("")));
        var graph = new GraphBuilder("noop")
            .AddNode(noop)
            .AddEdge("noop", "noop", static (_, s) => s.RunCount("noop") < MicroSteps)
            .AddEdge("noop", Graph.End, static (_, s) => s.RunCount("noop") >= MicroSteps)
            .Build();
        var runner = new GraphRunner(NullChatClient.Instance);
        var start = Stopwatch.GetTimestamp();
        var result = await runner.RunToEndAsync(graph, GraphState.Initial(""), new GraphRunOptions { MaxSteps = MicroSteps }, ct);
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (result.StopReason.Code != StopCodes.Completed || result.Flow.Nodes.Count != MicroSteps)
            throw new InvalidOperationException($"The no-op graph stopped with {result.StopReason.Code} after {result.Flow.Nodes.Count} steps.");
        return ms;
    }

    private sealed class Paths(IChatClient chat, LabGraphFactory labGraphs, OrchestrationOptions options, string model, long seed,
        HttpClient http, HttpClient backend)
    {
        private readonly byte[] _requestBody = Encoding.UTF8.GetBytes(
            $"{{\"prompt\":{JsonSerializer.Serialize(Prompt)},\"model\":\"{Model}\",\"parameters\":{{\"seed\":{seed}}}}}");

        // The same graph, model and seed as /orchestrate/ gets, through the Backend (sync: answered when it has finished).
        private readonly byte[] _executeBody = Encoding.UTF8.GetBytes(
            $"{{\"prompt\":{JsonSerializer.Serialize(Prompt)},\"model\":\"{Model}\",\"execution_type\":\"orchestrator\",\"parameters\":{{\"seed\":{seed}}}}}");

        /// <summary>The lab graph as <c>POST /orchestrate/</c> builds and runs it, minus HTTP and JSON.</summary>
        public async Task<GraphSample> GraphAsync(CancellationToken ct)
        {
            var recorder = new RecordingChatClient(chat);
            var start = Stopwatch.GetTimestamp();
            var (graph, observers) = labGraphs.Build(new LabGraphSettings { Model = model, Seed = seed }, []);
            var result = await new GraphRunner(recorder).RunToEndAsync(graph, GraphState.Initial(Prompt), new GraphRunOptions
            {
                MaxSteps = options.MaxSteps,
                Budget = new RunBudget(options.MaxModelCalls, null, TimeSpan.FromSeconds(options.WallTimeSeconds)),
                Observers = observers,
            }, ct);
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (result.StopReason.Code is not (StopCodes.Completed or StopCodes.Rejected))
                throw new InvalidOperationException($"The lab graph stopped with {result.StopReason.Code}: {result.StopReason.Message}");
            if (recorder.Calls.Count != result.Metrics.ModelCalls)
                throw new InvalidOperationException($"Recorded {recorder.Calls.Count} model calls, the run counted {result.Metrics.ModelCalls}.");
            return new GraphSample(ms, result.Flow.Nodes.Count, recorder.Calls, result.StopReason.Code, graph.Name,
                [.. graph.Nodes.Keys], string.Join(" → ", result.Flow.Nodes.Select(n => n.Route is { } route ? $"{n.Name} ({route})" : n.Name)));
        }

        /// <summary>The same calls straight on the client, consumed as the nodes consume them (streamed, then joined).</summary>
        public async Task<double> DirectAsync(IReadOnlyList<RecordedCall> calls, CancellationToken ct)
        {
            var start = Stopwatch.GetTimestamp();
            foreach (var call in calls)
                await chat.GetStreamingResponseAsync(call.Messages, call.Options, ct).ToChatResponseAsync(ct);
            return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        /// <param name="ndjson">Asks for the event stream (Accept: application/x-ndjson), as the Backend does.</param>
        public async Task<double> HttpAsync(CancellationToken ct, bool ndjson = false)
        {
            var start = Stopwatch.GetTimestamp();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/orchestrate/") { Content = new ByteArrayContent(_requestBody) };
            request.Content.Headers.ContentType = new("application/json");
            if (ndjson)
                request.Headers.Accept.Add(new("application/x-ndjson"));
            using var response = await http.SendAsync(request, ct);
            await response.Content.LoadIntoBufferAsync(ct);
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"POST /orchestrate/ answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
            return ms;
        }

        public async Task<BackendSample> BackendAsync(CancellationToken ct)
        {
            var start = Stopwatch.GetTimestamp();
            using var content = new ByteArrayContent(_executeBody);
            content.Headers.ContentType = new("application/json");
            using var response = await backend.PostAsync("/api/v1/execute", content, ct);
            await response.Content.LoadIntoBufferAsync(ct);
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            var body = await response.Content.ReadAsStringAsync(ct);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"POST /api/v1/execute answered {(int)response.StatusCode}: {body}");
            using var result = JsonDocument.Parse(body);
            var status = result.RootElement.GetProperty("status").GetString();
            if (status != "completed")
                throw new InvalidOperationException($"The orchestrator execution ended {status}: {body}");
            return new BackendSample(ms, result.RootElement.GetProperty("flow").GetProperty("nodes").GetArrayLength());
        }
    }

    private sealed record BackendSample(double Ms, int Nodes);

    private sealed record RecordedCall(List<ChatMessage> Messages, ChatOptions? Options);

    private sealed record GraphSample(double Ms, int Transitions, IReadOnlyList<RecordedCall> Calls, string StopCode, string Graph,
        IReadOnlyList<string> Nodes, string Path, bool Mismatched = false);

    private sealed record Sample(GraphSample Graph, double Direct, double Http, double Stream, BackendSample Backend);

    /// <summary>Passes every call through and keeps its messages and options, to replay them directly.</summary>
    private sealed class RecordingChatClient(IChatClient inner) : DelegatingChatClient(inner)
    {
        private readonly List<RecordedCall> _calls = [];

        public IReadOnlyList<RecordedCall> Calls => _calls;

        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            _calls.Add(new RecordedCall(list, options));
            return base.GetResponseAsync(list, options, cancellationToken);
        }

        public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
            ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            _calls.Add(new RecordedCall(list, options));
            return base.GetStreamingResponseAsync(list, options, cancellationToken);
        }

        // The inner client belongs to LabService's container.
        protected override void Dispose(bool disposing) { }
    }

    /// <summary>The no-op graph never calls a model.</summary>
    private sealed class NullChatClient : IChatClient
    {
        public static NullChatClient Instance { get; } = new();

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new InvalidOperationException("The no-op graph made a model call.");

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
            ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("The no-op graph made a model call.");

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }
}
