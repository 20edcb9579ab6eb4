using System.Diagnostics;
using System.Net;
using System.Text;

using AgentLab.AppHost.Dashboard;
using AgentLab.Tests.Support;

namespace AgentLab.Bench;

/// <summary>
/// What each hop adds: the same prompt sent straight to the simulator, through LabService's /inference/, and
/// through the Backend's /api/v1/execute, non-streaming, with the simulator at zero token latency.
/// The three servers and this load generator share the machine's cores, so read ratios, not absolutes.
/// </summary>
internal static class GatewayBenchmark
{
    private const string Prompt = "Dime 3 números primos";

    /// <param name="maxTokens">Caps the reply (Ollama's num_predict) on every path; null keeps the model's natural
    /// length (54 tokens for this prompt), so the cost per streamed line and the cost per request can be told apart.</param>
    /// <param name="rateLimits">Whether the Backend counts requests against its (high) rate limits; off isolates
    /// their cost from authentication's.</param>
    /// <param name="redis">Whether the Backend has Redis (Garnet), so that it counts rate limits there, one round trip
    /// per request, as replicas do; without it, it counts them in process.</param>
    /// <param name="otlp">Whether LabService and the Backend export traces, metrics and logs to the dashboard's OTLP
    /// receiver (started here, as the AppHost starts it), so the cost of telemetry is measured too.</param>
    public static async Task<int> RunAsync(TimeSpan duration, TimeSpan warmUp, int[] concurrencies, int? maxTokens, bool rateLimits = true,
        bool redis = false, bool otlp = false)
    {
        var quiet = new Dictionary<string, string>
        {
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.AspNetCore"] = "Warning",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };

        await using var dashboard = otlp ? new LabDashboard(new DashboardOptions { Port = 0, OtlpPort = 0 }) : null;
        if (dashboard is not null)
        {
            await dashboard.StartReceiverAsync(CancellationToken.None);
            foreach (var (key, value) in dashboard.ServiceEnvironment())
                quiet[key] = value;
            Console.WriteLine($"Telemetry: the services export over OTLP to the dashboard's receiver at {dashboard.OtlpEndpoint}.");
        }

        Console.WriteLine("Starting the simulator, LabService and Backend as separate processes...");
        await using var simulator = await ServiceProcess.StartAsync("AgentLab.ModelSimulator", "/", quiet,
            ["--Simulator:TimeToFirstTokenMs=0", "--Simulator:TokenLatencyMs=0", "--Simulator:LoadDurationMs=0"]);
        await using var lab = await ServiceProcess.StartAsync("AgentLab.LabService", "/health",
            new Dictionary<string, string>(quiet) { ["ConnectionStrings__ollama"] = $"Endpoint={simulator.BaseAddress}" }.With(BenchAuth.LabServiceEnvironment), []);
        // The Backend records every execution before it runs it: it needs its PostgreSQL (a throw-away one here).
        await using var database = await BenchDatabase.StartAsync(null, keep: false, [], CancellationToken.None);
        await using var garnet = redis ? await StreamBenchmark.Garnet.StartAsync(CancellationToken.None) : null;
        // Every request carries a token and is counted against the rate limits (set far above what this sends).
        var backendEnvironment = new Dictionary<string, string>(quiet)
        {
            ["services__labservice__http__0"] = lab.BaseAddress.ToString().TrimEnd('/'),
            ["ConnectionStrings__agentlabdb"] = database.ConnectionString,
            ["Retention__Enabled"] = "false",
            ["RateLimits__Enabled"] = rateLimits ? "true" : "false",
        }.With(BenchAuth.BackendEnvironment);
        if (garnet is not null)
            backendEnvironment["ConnectionStrings__redis"] = garnet.ConnectionString;
        await using var backend = await ServiceProcess.StartAsync("AgentLab.Backend", "/api/v1/health", backendEnvironment, []);
        Console.WriteLine($"Backend: bearer token on every request; rate limits {(rateLimits ? $"on (high), counted {(garnet is null ? "in process" : "in Redis (Garnet)")}" : "off")}.");

        var numPredict = maxTokens is { } n ? $",\"num_predict\":{n}" : "";
        var parameters = maxTokens is { } m ? $",\"parameters\":{{\"max_tokens\":{m}}}" : "";
        var chat = "{\"model\":\"mistral:7b\",\"messages\":[{\"role\":\"user\",\"content\":\"" + Prompt + "\"}],\"options\":{\"num_ctx\":4096" + numPredict + "}";
        var execute = "{\"prompt\":\"" + Prompt + "\",\"model\":\"mistral7b\"" + parameters + "}";
        var targets = new Target[]
        {
            new("simulator /api/chat (json)", new Uri(simulator.BaseAddress, "/api/chat"), chat + ",\"stream\":false}"),
            new("simulator /api/chat (ndjson)", new Uri(simulator.BaseAddress, "/api/chat"), chat + "}"),
            new("labservice /inference/", new Uri(lab.BaseAddress, "/inference/"), execute, BenchAuth.ServiceKey),
            new("backend /api/v1/execute", new Uri(backend.BaseAddress, "/api/v1/execute"), execute, BenchAuth.Token),
        };

        // Tiered JIT with dynamic PGO keeps recompiling hot paths for several seconds after start; measuring before
        // that settles reports the JIT, not the hop. Drive every path at full load first.
        Console.WriteLine($"Warming up every path for {warmUp.TotalSeconds:0} s and at least {WarmUpRequests} requests...");
        foreach (var target in targets)
            await WarmUpAsync(target, concurrencies.Max(), warmUp / targets.Length);

        Console.WriteLine($"{Environment.ProcessorCount} cores; {duration.TotalSeconds:0} s per cell after a 1 s warm-up; " +
            (maxTokens is { } cap ? $"replies capped at {cap} tokens." : "natural reply length (54 tokens)."));
        Console.WriteLine();
        // CPU per request of each server process: what a hop costs when the machine is not the limit.
        ServiceProcess[] servers = [simulator, lab, backend];
        // PostgreSQL shares the cores too: its CPU per request is part of what the Backend's hop costs the machine.
        var postgres = await PostgresCpu.FindAsync(database.ConnectionString, CancellationToken.None);
        Console.WriteLine($"{"target",-30} {"c",3} {"req/s",9} {"p50 ms",8} {"p99 ms",8} {"errors",7}   CPU µs/req: {"sim",5} {"lab",5} {"backend",7} {"pg",6}");
        var results = new Dictionary<(string, int), Result>();
        foreach (var c in concurrencies)
        {
            foreach (var target in targets)
            {
                var cpuBefore = servers.Select(p => p.TotalProcessorTime).ToArray();
                var pgBefore = postgres?.Total();
                var result = await MeasureAsync(target, c, duration);
                var cpu = servers.Select((p, i) => (p.TotalProcessorTime - cpuBefore[i]).TotalMicroseconds / Math.Max(1, result.Requests)).ToArray();
                var pg = pgBefore is { } before ? $"{(postgres!.Total() - before).TotalMicroseconds / Math.Max(1, result.Requests),6:0}" : $"{"-",6}";
                results[(target.Name, c)] = result;
                Console.WriteLine($"{target.Name,-30} {c,3} {result.RequestsPerSecond,9:0} {result.P50,8:0.000} {result.P99,8:0.000} {result.Errors,7}" +
                    $"               {cpu[0],5:0} {cpu[1],5:0} {cpu[2],7:0} {pg}");
            }
        }

        Console.WriteLine();
        Console.WriteLine("Latency each hop adds (difference of percentiles):");
        foreach (var c in concurrencies)
        {
            var sim = results[(targets[1].Name, c)];
            var labResult = results[(targets[2].Name, c)];
            var backendResult = results[(targets[3].Name, c)];
            Console.WriteLine($"  c={c,-3} LabService over simulator (ndjson): p50 {labResult.P50 - sim.P50:+0.000;-0.000} ms, p99 {labResult.P99 - sim.P99:+0.000;-0.000} ms");
            Console.WriteLine($"  c={c,-3} Backend over LabService:            p50 {backendResult.P50 - labResult.P50:+0.000;-0.000} ms, p99 {backendResult.P99 - labResult.P99:+0.000;-0.000} ms");
        }
        return results.Values.Any(r => r.Errors > 0) ? 1 : 0;
    }

    /// <summary>
    /// Drives one path for its share of the warm-up, and on until it has served <see cref="WarmUpRequests"/> requests
    /// (at most <see cref="WarmUpLimit"/>). A time share alone left the Backend cold: at ~30 executions/s it served
    /// ~60 requests in its 2 s, far from enough for tiered JIT to reach EF Core's and Npgsql's hot paths, and its
    /// first cell then measured the JIT (p50 +120-240 ms, 70-115 ms CPU per request instead of ~10).
    /// </summary>
    private static async Task WarmUpAsync(Target target, int concurrency, TimeSpan share)
    {
        var clock = Stopwatch.StartNew();
        var served = 0;
        while (clock.Elapsed < share || (served < WarmUpRequests && clock.Elapsed < WarmUpLimit))
            served += (await MeasureAsync(target, concurrency, TimeSpan.FromSeconds(1))).Requests;
    }

    private const int WarmUpRequests = 1500;
    private static readonly TimeSpan WarmUpLimit = TimeSpan.FromSeconds(60);

    private static async Task<Result> MeasureAsync(Target target, int concurrency, TimeSpan duration)
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = concurrency,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        }) { Timeout = TimeSpan.FromSeconds(30) };
        var body = Encoding.UTF8.GetBytes(target.Body);

        await RunLoopsAsync(http, target, body, concurrency, TimeSpan.FromSeconds(1), record: null);
        var latencies = new List<double>[concurrency];
        for (var i = 0; i < concurrency; i++)
            latencies[i] = new List<double>(capacity: 16_384);
        var clock = Stopwatch.StartNew();
        var errors = await RunLoopsAsync(http, target, body, concurrency, duration, latencies);
        var elapsed = clock.Elapsed;

        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new Result(all.Length, all.Length / elapsed.TotalSeconds, Percentile(all, 0.50), Percentile(all, 0.99), errors);
    }

    private static async Task<int> RunLoopsAsync(HttpClient http, Target target, byte[] body, int concurrency, TimeSpan duration,
        List<double>[]? record)
    {
        var uri = target.Uri;
        var authorization = target.Bearer is { } bearer ? new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer) : null;
        var errors = 0;
        var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var loops = Enumerable.Range(0, concurrency).Select(async i =>
        {
            while (Stopwatch.GetTimestamp() < deadline)
            {
                var start = Stopwatch.GetTimestamp();
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new("application/json");
                using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = content };
                request.Headers.Authorization = authorization;
                using var response = await http.SendAsync(request);
                await response.Content.LoadIntoBufferAsync();
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    if (Interlocked.Increment(ref errors) == 1)
                        Console.Error.WriteLine($"{uri} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    continue;
                }
                record?[i].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        });
        await Task.WhenAll(loops);
        return errors;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    /// <param name="Bearer">The credential the server requires (the Backend: a token; LabService: the service key).</param>
    private sealed record Target(string Name, Uri Uri, string Body, string? Bearer = null);

    private sealed record Result(int Requests, double RequestsPerSecond, double P50, double P99, int Errors);
}
