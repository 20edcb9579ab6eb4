using System.Globalization;
using AgentLab.Bench;

// dotnet run -c Release --project bench/AgentLab.Bench -- gateway [--seconds 5] [--warmup 20] [--concurrency 1,16] [--max-tokens N] [--no-rate-limits] [--redis] [--otlp]
// dotnet run -c Release --project bench/AgentLab.Bench -- history [--rows 1000000] [--runs 20] [--connection "Host=...;Username=..." [--keep]] [--no-http]
// dotnet run -c Release --project bench/AgentLab.Bench -- orchestrate [--runs 200] [--warmup 15] [--seed 40] [--connection "..."]
// dotnet run -c Release --project bench/AgentLab.Bench -- store [--runs 1000] [--concurrency 1] [--options "Npgsql keywords"] [--connection "..." [--keep]]
// dotnet run -c Release --project bench/AgentLab.Bench -- retention [--rows 1000000] [--events-per-execution 10] [--max-executions 100000] [--connection "..." [--keep]]
// dotnet run -c Release --project bench/AgentLab.Bench -- ratelimit [--requests 20000]
// dotnet run -c Release --project bench/AgentLab.Bench -- stream [--subscribers 1000] [--idle 5000] [--idle-executions 10] [--ttft-runs 30] [--token-ms 25] [--sim-ttft-ms 40] [--heartbeat 5] [--connect-concurrency 32]
var command = args.FirstOrDefault() ?? "gateway";
switch (command)
{
    case "gateway":
    {
        var seconds = ReadOption(args, "--seconds", "5");
        var concurrency = ReadOption(args, "--concurrency", "1,16").Split(',').Select(int.Parse).ToArray();
        var warmUp = ReadOption(args, "--warmup", "20");
        return await GatewayBenchmark.RunAsync(TimeSpan.FromSeconds(double.Parse(seconds, CultureInfo.InvariantCulture)),
            TimeSpan.FromSeconds(double.Parse(warmUp, CultureInfo.InvariantCulture)), concurrency,
            ReadOption(args, "--max-tokens", "") is { Length: > 0 } cap ? int.Parse(cap, CultureInfo.InvariantCulture) : null,
            rateLimits: !args.Contains("--no-rate-limits"), redis: args.Contains("--redis"), otlp: args.Contains("--otlp"));
    }
    case "history":
        return await HistoryBenchmark.RunAsync(int.Parse(ReadOption(args, "--rows", "1000000"), CultureInfo.InvariantCulture),
            ReadOption(args, "--connection", "") is { Length: > 0 } connection ? connection : null,
            int.Parse(ReadOption(args, "--runs", "20"), CultureInfo.InvariantCulture),
            http: !args.Contains("--no-http"), keep: args.Contains("--keep"));
    case "retention":
        return await RetentionBenchmark.RunAsync(int.Parse(ReadOption(args, "--rows", "1000000"), CultureInfo.InvariantCulture),
            int.Parse(ReadOption(args, "--events-per-execution", "10"), CultureInfo.InvariantCulture),
            int.Parse(ReadOption(args, "--max-executions", "100000"), CultureInfo.InvariantCulture),
            ReadOption(args, "--connection", "") is { Length: > 0 } target ? target : null, keep: args.Contains("--keep"));
    case "orchestrate":
        return await OrchestrateBenchmark.RunAsync(int.Parse(ReadOption(args, "--runs", "200"), CultureInfo.InvariantCulture),
            TimeSpan.FromSeconds(double.Parse(ReadOption(args, "--warmup", "15"), CultureInfo.InvariantCulture)),
            long.Parse(ReadOption(args, "--seed", "40"), CultureInfo.InvariantCulture),
            ReadOption(args, "--connection", "") is { Length: > 0 } server ? server : null);
    case "store":
        return await StoreBenchmark.RunAsync(int.Parse(ReadOption(args, "--runs", "1000"), CultureInfo.InvariantCulture),
            int.Parse(ReadOption(args, "--concurrency", "1"), CultureInfo.InvariantCulture),
            ReadOption(args, "--connection", "") is { Length: > 0 } store ? store : null, keep: args.Contains("--keep"),
            ReadOption(args, "--options", "") is { Length: > 0 } extra ? extra : null);
    case "stream":
        return await StreamBenchmark.RunAsync(new StreamBenchSettings(
            Subscribers: int.Parse(ReadOption(args, "--subscribers", "1000"), CultureInfo.InvariantCulture),
            Idle: int.Parse(ReadOption(args, "--idle", "5000"), CultureInfo.InvariantCulture),
            IdleExecutions: int.Parse(ReadOption(args, "--idle-executions", "10"), CultureInfo.InvariantCulture),
            TtftRuns: int.Parse(ReadOption(args, "--ttft-runs", "30"), CultureInfo.InvariantCulture),
            TokenLatencyMs: int.Parse(ReadOption(args, "--token-ms", "25"), CultureInfo.InvariantCulture),
            SimulatorTtftMs: int.Parse(ReadOption(args, "--sim-ttft-ms", "40"), CultureInfo.InvariantCulture),
            HeartbeatSeconds: int.Parse(ReadOption(args, "--heartbeat", "5"), CultureInfo.InvariantCulture),
            ConnectConcurrency: int.Parse(ReadOption(args, "--connect-concurrency", "32"), CultureInfo.InvariantCulture)));
    case "ratelimit":
        return await RateLimitBenchmark.RunAsync(int.Parse(ReadOption(args, "--requests", "20000"), CultureInfo.InvariantCulture));
    default:
        Console.Error.WriteLine($"Unknown benchmark '{command}'. Available: gateway, history, retention, orchestrate, store, stream, ratelimit");
        return 2;
}

static string ReadOption(string[] args, string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
