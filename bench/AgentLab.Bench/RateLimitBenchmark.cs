using System.Diagnostics;
using System.Net;
using System.Security.Claims;
using AgentLab.Backend.Events;
using AgentLab.Backend.Security.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AgentLab.Bench;

/// <summary>
/// What the Backend's rate limiter costs one request, apart from everything else: <see cref="AgentLabRateLimiter"/>
/// acquiring for an authenticated request (two counters: subject and address), counted in process and in Garnet
/// (one pipelined INCR + PEXPIRE round trip), one caller at a time and 16 at once.
/// </summary>
internal static class RateLimitBenchmark
{
    public static async Task<int> RunAsync(int requests)
    {
        Console.WriteLine("Starting Garnet...");
        await using var garnet = await StreamBenchmark.Garnet.StartAsync(CancellationToken.None);
        Console.WriteLine($"{Environment.ProcessorCount} cores; {requests} acquisitions per cell, after as many to warm up.");
        Console.WriteLine();
        Console.WriteLine($"{"counted",-12} {"c",3} {"acquires/s",11} {"p50 µs",8} {"p99 µs",8} {"CPU µs/acquire",15}  mode afterwards");
        foreach (var (name, redis) in new[] { ("in process", (string?)null), ("in Garnet", garnet.ConnectionString) })
        {
            await using var connection = new RedisConnection(new ConfigurationBuilder()
                .AddInMemoryCollection(redis is null ? [] : [new("ConnectionStrings:redis", redis)]).Build(), NullLogger<RedisConnection>.Instance);
            await connection.Connection;
            var limiter = new AgentLabRateLimiter(Options.Create(new RateLimitOptions
            {
                PerSubjectPerMinute = 10_000_000,
                PerIpPerMinute = 10_000_000,
                RedisKeyPrefix = $"bench:{Guid.NewGuid():N}",
                RedisRetrySeconds = 1,
            }), connection, TimeProvider.System, NullLogger<AgentLabRateLimiter>.Instance);
            foreach (var concurrency in new[] { 1, 16 })
            {
                // Warm-up (JIT, connection); a cold first command can miss the 100 ms bound and send counting in
                // process for RedisRetrySeconds: warm up until it counts where it should.
                for (var tries = 0; tries < 10; tries++)
                {
                    await MeasureAsync(limiter, concurrency, requests);
                    if (limiter.State.Mode != RateLimitState.Fallback)
                        break;
                    Console.WriteLine($"  (warm-up fell back: {limiter.State.Detail})");
                    await Task.Delay(TimeSpan.FromSeconds(1.1));
                    await MeasureAsync(limiter, concurrency, 10);
                }
                var (rate, p50, p99, cpu) = await MeasureAsync(limiter, concurrency, requests);
                Console.WriteLine($"{name,-12} {concurrency,3} {rate,11:0} {p50,8:0.0} {p99,8:0.0} {cpu,15:0.0}  {limiter.State.Mode}");
            }
        }
        return 0;
    }

    private static async Task<(double Rate, double P50, double P99, double Cpu)> MeasureAsync(AgentLabRateLimiter limiter, int concurrency, int requests)
    {
        var latencies = new double[requests];
        var next = -1;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async c =>
        {
            var context = Request(c);
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests)
            {
                var start = Stopwatch.GetTimestamp();
                using var lease = await limiter.AcquireAsync(context);
                latencies[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                if (!lease.IsAcquired)
                    throw new InvalidOperationException("refused: the limits are meant to be out of reach");
            }
        }));
        var elapsed = clock.Elapsed;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMicroseconds / requests;
        Array.Sort(latencies);
        return (requests / elapsed.TotalSeconds, latencies[requests / 2], latencies[(int)(requests * 0.99)], cpu);
    }

    private static DefaultHttpContext Request(int caller)
    {
        var context = new DefaultHttpContext
        {
            User = new ClaimsPrincipal(new ClaimsIdentity([new Claim("sub", $"bench-{caller}")], "Bearer")),
        };
        context.Connection.RemoteIpAddress = IPAddress.Parse($"10.0.0.{caller + 1}");
        context.Request.Method = "GET";
        context.Request.Path = "/api/v1/history";
        return context;
    }
}
