using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using AgentLab.Backend.Events;
using AgentLab.Backend.Security.RateLimiting;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// A replica whose first connection to Redis is still being made counts in process, without reporting an outage;
/// when that first attempt ends without a connection, it is one, and the log says so.
/// </summary>
public sealed class RateLimiterStartupTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task FirstConnectionUnderway_CountsInProcessSilently_ThenWarnsWhenRedisNeverAnswered()
    {
        // A "Redis" that accepts connections and never answers: the client's first attempt runs for its connect timeout.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new ConcurrentBag<Socket>();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                    accepted.Add(await silent.AcceptSocketAsync(Ct));
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The test is over.
            }
        }, Ct);
        var endpoint = $"127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:redis"] = endpoint }).Build();
        await using var redis = new RedisConnection(configuration, loggers.CreateLogger<RedisConnection>());
        var clock = new StoppedClock(new DateTimeOffset(2026, 11, 22, 10, 0, 10, TimeSpan.Zero));
        using var limiter = new AgentLabRateLimiter(Options.Create(new RateLimitOptions { PerIpPerMinute = 2 }), redis, clock,
            loggers.CreateLogger<AgentLabRateLimiter>());

        var whileConnecting = new List<bool>();
        for (var i = 0; i < 3; i++)
        {
            using var lease = await limiter.AcquireAsync(Request(), cancellationToken: Ct).AsTask().WaitAsync(Bound, Ct);
            whileConnecting.Add(lease.IsAcquired);
        }
        var stateWhileConnecting = limiter.State;
        var warningsWhileConnecting = Warnings(logs);
        await redis.Connection.WaitAsync(Bound, Ct);
        using var afterAttempt = await limiter.AcquireAsync(Request(), cancellationToken: Ct).AsTask().WaitAsync(Bound, Ct);

        Assert.Equal([true, true, false], whileConnecting);   // limits hold while connecting: they never fail open
        Assert.Equal(RateLimitState.Fallback, stateWhileConnecting.Mode);
        Assert.Contains($"Connecting to Redis at {endpoint}", stateWhileConnecting.Detail, StringComparison.Ordinal);
        Assert.Empty(warningsWhileConnecting);
        Assert.False(afterAttempt.IsAcquired);
        var warning = Assert.Single(Warnings(logs));
        Assert.Contains($"not connected to {endpoint}", warning, StringComparison.Ordinal);
        Assert.Equal(RateLimitState.Fallback, limiter.State.Mode);
        Assert.Contains("Redis is unavailable", limiter.State.Detail, StringComparison.Ordinal);
        foreach (var socket in accepted)
            socket.Dispose();
    }

    private static List<string> Warnings(CapturingLoggerProvider logs) =>
        [.. logs.Texts().Where(t => t.Contains(": Rate limits are counted in this replica only", StringComparison.Ordinal))];

    private static DefaultHttpContext Request()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/api/v1/history";
        context.Connection.RemoteIpAddress = IPAddress.Parse("203.0.113.7");
        return context;
    }
}
