using System.Net;
using System.Text.Json;
using AgentLab.Backend.Events;
using AgentLab.Backend.Security.RateLimiting;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// Request limits per subject, per client address and per subject's executions (429 <c>rate_limited</c> with
/// Retry-After), forwarded headers trusted only from configured proxies, the totals across two replicas on one Redis
/// (Garnet and redis-server), the in-process fallback while Redis is down, and the cap on a subject's concurrent
/// executions (also across replicas, and not applied to an idempotent replay).
/// </summary>
public sealed class RateLimitTests : BackendTestBase
{
    /// <summary>The address TestServer requests come from, set by <see cref="PeerAddressFilter"/> (TestServer has none).</summary>
    private const string PeerHeader = "X-Test-Peer";

    private const string AsyncBody = """{"prompt":"hold","mode":"async"}""";

    [Fact]
    public async Task PerSubject_OverLimit_Returns429RateLimitedWithRetryAfter()
    {
        var factory = Factory(Limits(perSubject: 3));
        var alice = factory.CreateClientFor("alice");
        var bob = factory.CreateClientFor("bob");
        await WarmUpAsync(bob);
        await FreshWindowAsync();

        var allowed = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
            allowed.Add((await GetAsync(alice, UnknownExecution)).StatusCode);
        using var refused = await GetAsync(alice, UnknownExecution);
        using var otherSubject = await GetAsync(bob, UnknownExecution);

        Assert.All(allowed, status => Assert.Equal(HttpStatusCode.NotFound, status));
        var problem = await AssertProblemAsync(refused, 429, "rate_limited");
        Assert.Equal("subject", problem.GetProperty("limit").GetString());
        Assert.Equal(3, problem.GetProperty("limit_per_minute").GetInt32());
        AssertRetryAfterWithinWindow(refused);
        Assert.Equal(HttpStatusCode.NotFound, otherSubject.StatusCode);
    }

    [Fact]
    public async Task PerIp_AnonymousOverLimit_Returns429ButHealthStaysOpen()
    {
        await using var backend = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, Limits(perIp: 3));
        var anonymous = AnonymousWithPeers(backend);
        await FreshWindowAsync();

        var allowed = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
            allowed.Add((await GetAsync(anonymous, "/api/v1/history", peer: "203.0.113.7")).StatusCode);
        using var refused = await GetAsync(anonymous, "/api/v1/history", peer: "203.0.113.7");
        using var otherAddress = await GetAsync(anonymous, "/api/v1/history", peer: "203.0.113.8");
        using var health = await GetAsync(anonymous, "/api/v1/health", peer: "203.0.113.7");
        using var ready = await GetAsync(anonymous, "/api/v1/ready", peer: "203.0.113.7");

        Assert.All(allowed, status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        var problem = await AssertProblemAsync(refused, 429, "rate_limited");
        Assert.Equal("ip", problem.GetProperty("limit").GetString());
        AssertRetryAfterWithinWindow(refused);
        Assert.Equal(HttpStatusCode.Unauthorized, otherAddress.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, ready.StatusCode);
    }

    [Fact]
    public async Task PerIp_XForwardedForFromUnconfiguredProxy_IsIgnored()
    {
        // Loopback is what the framework would trust by default; nothing is configured here, so nobody is trusted.
        await using var backend = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, Limits(perIp: 2));
        var anonymous = AnonymousWithPeers(backend);
        await FreshWindowAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 1; i <= 3; i++)
        {
            using var response = await GetAsync(anonymous, "/api/v1/history", peer: "127.0.0.1", forwardedFor: $"198.51.100.{i}");
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task PerIp_XForwardedForFromConfiguredProxy_CountsTheForwardedClient()
    {
        var settings = Limits(perIp: 2);
        settings["ForwardedHeaders:KnownProxies:0"] = "10.0.0.5";
        await using var backend = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, settings);
        var anonymous = AnonymousWithPeers(backend);
        await FreshWindowAsync();

        // Through the proxy: three different clients, each within its own limit.
        var viaProxy = new List<HttpStatusCode>();
        for (var i = 1; i <= 3; i++)
            viaProxy.Add((await GetAsync(anonymous, "/api/v1/history", peer: "10.0.0.5", forwardedFor: $"198.51.100.{i}")).StatusCode);
        // One client through the proxy, over its limit.
        using var second = await GetAsync(anonymous, "/api/v1/history", peer: "10.0.0.5", forwardedFor: "198.51.100.1");
        using var third = await GetAsync(anonymous, "/api/v1/history", peer: "10.0.0.5", forwardedFor: "198.51.100.1");
        // A peer that is not the proxy: its X-Forwarded-For is ignored, so rotating it does not help.
        var notProxy = new List<HttpStatusCode>();
        for (var i = 1; i <= 3; i++)
            notProxy.Add((await GetAsync(anonymous, "/api/v1/history", peer: "10.0.0.6", forwardedFor: $"198.51.100.{10 + i}")).StatusCode);

        Assert.All(viaProxy, status => Assert.Equal(HttpStatusCode.Unauthorized, status));
        Assert.Equal(HttpStatusCode.Unauthorized, second.StatusCode);
        var problem = await AssertProblemAsync(third, 429, "rate_limited");
        Assert.Equal("ip", problem.GetProperty("limit").GetString());
        Assert.Equal([HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests], notProxy);
    }

    [Fact]
    public async Task Executions_OverSubjectsExecutionLimit_Returns429WhileReadsGoOn()
    {
        var factory = Factory(Limits(executions: 2));
        var alice = factory.CreateClientFor("alice");
        await WarmUpAsync(factory.CreateClientFor("warm-up"));
        await FreshWindowAsync();

        using var first = await PostJsonAsync(alice, """{"prompt":"one"}""");
        using var second = await PostJsonAsync(alice, """{"prompt":"two"}""");
        using var third = await PostJsonAsync(alice, """{"prompt":"three"}""");
        using var read = await GetAsync(alice, "/api/v1/history");

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var problem = await AssertProblemAsync(third, 429, "rate_limited");
        Assert.Equal("executions", problem.GetProperty("limit").GetString());
        AssertRetryAfterWithinWindow(third);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(2, Lab.Received.Count(r => r.Path.StartsWith("/inference", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task TwoReplicas_RequestsAlternate_RefusedAfterTheTotalLimit(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        // Garnet: the shared one (the key prefix keeps this test's counts apart); redis-server: a private one.
        await using var own = kind == RedisKind.RedisServer ? await RedisServer.StartAsync(kind, Ct) : null;
        var server = own ?? await SharedRedis.GetAsync().WaitAsync(TimeSpan.FromMinutes(3), Ct);
        var settings = Limits(perSubject: 4);
        settings["ConnectionStrings:redis"] = server.ConnectionString;
        settings["RateLimits:RedisKeyPrefix"] = $"test:{Guid.NewGuid():N}";   // both replicas share it
        settings["RateLimits:RedisRetrySeconds"] = "1";
        var a = Factory(settings);
        var b = Factory(settings);
        var clients = new[] { a.CreateClientFor("alice"), b.CreateClientFor("alice") };
        await WaitForSharedCountingAsync(a);
        await WaitForSharedCountingAsync(b);
        await FreshWindowAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var response = await GetAsync(clients[i % 2], UnknownExecution);
            statuses.Add(response.StatusCode);
        }

        // Per replica, each would have seen 3 requests (under 4): only the total reaches the limit.
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.NotFound, 4), HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(RateLimitState.Shared, a.Services.GetRequiredService<AgentLabRateLimiter>().State.Mode);
    }

    [Theory]
    [InlineData(RedisKind.Garnet)]
    [InlineData(RedisKind.RedisServer)]
    public async Task RedisStopped_FallsBackToCountingInTheReplica_AndStillLimits(RedisKind kind)
    {
        RedisServer.SkipUnlessAvailable(kind);
        await using var server = await RedisServer.StartAsync(kind, Ct);
        var settings = Limits(perSubject: 3);
        settings["ConnectionStrings:redis"] = server.ConnectionString;
        var factory = Factory(settings);
        var alice = factory.CreateClientFor("alice");
        await WaitForRedisAsync(factory);
        await WarmUpAsync(factory.CreateClientFor("warm-up"));
        await server.StopAsync();
        await FreshWindowAsync();

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await GetAsync(alice, UnknownExecution);
            statuses.Add(response.StatusCode);
        }
        var health = await JsonAsync(await GetAsync(factory.CreateClientFor("operator"), "/api/v1/health/detailed"));

        Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(RateLimitState.Fallback, factory.Services.GetRequiredService<AgentLabRateLimiter>().State.Mode);
        var component = health.GetProperty("components").GetProperty("rate_limits");
        Assert.Equal("degraded", component.GetProperty("status").GetString());
        Assert.Contains("each replica", component.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReplicaStarting_FirstRequestsBeforeRedisAnswers_NoOutageWarning_ThenCountedInRedis()
    {
        RedisServer.SkipUnlessAvailable(RedisKind.Garnet);
        await using var server = await RedisServer.StartAsync(RedisKind.Garnet, Ct);
        var settings = Limits(perSubject: 1000);
        settings["ConnectionStrings:redis"] = server.ConnectionString;
        // A request's own bound, generous here: on a loaded CI machine a later batch may miss 100 ms, which is a real
        // fallback (and logged), not the start-up this test is about.
        settings["RateLimits:RedisTimeoutMilliseconds"] = "2000";
        var logs = new CapturingLoggerProvider();
        await using var backend = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, settings);
        using var factory = backend.WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs).AddFilter<CapturingLoggerProvider>(null, LogLevel.Trace)));
        var early = factory.CreateClient().As("early");

        // Requests from the first instant: the connection is being made, then its first command is cold.
        var limiter = factory.Services.GetRequiredService<AgentLabRateLimiter>();
        var deadline = DateTimeOffset.UtcNow + Bound;
        var statuses = new List<HttpStatusCode>();
        while (limiter.State.Mode != RateLimitState.Shared)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the Backend never counted in Redis: {limiter.State.Detail}");
            using var response = await GetAsync(early, UnknownExecution);
            statuses.Add(response.StatusCode);
        }
        using var counted = await GetAsync(early, UnknownExecution);

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.NotFound, status));
        Assert.Equal(HttpStatusCode.NotFound, counted.StatusCode);
        Assert.Equal(RateLimitState.Shared, limiter.State.Mode);
        Assert.DoesNotContain(logs.Texts(), text => text.Contains("counted in this replica only", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConcurrentExecutions_OverCap_Returns429TooManyExecutions_ButReplaysAndOthersPass()
    {
        Lab.Inference = FakeLabService.Hang;
        var factory = Factory(Limits(concurrent: 2));
        var alice = factory.CreateClientFor("alice");

        using var first = await SubmitAsync(alice, idempotencyKey: "first");
        using var second = await SubmitAsync(alice);
        using var third = await SubmitAsync(alice);
        using var replay = await SubmitAsync(alice, idempotencyKey: "first");
        using var bob = await SubmitAsync(factory.CreateClientFor("bob"));

        var firstBody = await AssertAcceptedAsync(first);
        await AssertAcceptedAsync(second);
        var problem = await AssertProblemAsync(third, 429, "too_many_executions");
        Assert.Equal(2, problem.GetProperty("max_concurrent_executions").GetInt32());
        Assert.Equal(2, problem.GetProperty("active_executions").GetInt32());
        Assert.True(third.Headers.RetryAfter?.Delta > TimeSpan.Zero, "Retry-After must say when to try again");
        var replayBody = await AssertAcceptedAsync(replay);
        Assert.Equal(firstBody.GetProperty("execution_id").GetString(), replayBody.GetProperty("execution_id").GetString());
        await AssertAcceptedAsync(bob);
    }

    [Fact]
    public async Task ConcurrentExecutions_OneCancelled_FreesASlot()
    {
        Lab.Inference = FakeLabService.Hang;
        var factory = Factory(Limits(concurrent: 1));
        var alice = factory.CreateClientFor("alice");
        var id = (await AssertAcceptedAsync(await SubmitAsync(alice))).GetProperty("execution_id").GetString();
        using var refused = await SubmitAsync(alice);

        using var cancelled = await alice.PostAsync($"/api/v1/executions/{id}/cancel", null, Ct).WaitAsync(Bound, Ct);
        using var afterCancel = await SubmitAsync(alice);

        await AssertProblemAsync(refused, 429, "too_many_executions");
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        await AssertAcceptedAsync(afterCancel);
    }

    [Fact]
    public async Task ConcurrentExecutions_SimultaneousSubmitsOnTwoReplicas_OnlyTheCapPasses()
    {
        Lab.Inference = FakeLabService.Hang;
        var settings = Limits(concurrent: 2);
        var a = Factory(settings).CreateClientFor("alice");
        var b = Factory(settings).CreateClientFor("alice");
        await WarmUpAsync(a);
        await WarmUpAsync(b);

        var submits = Enumerable.Range(0, 8).Select(i => SubmitAsync(i % 2 == 0 ? a : b)).ToArray();
        var responses = await Task.WhenAll(submits).WaitAsync(Bound, Ct);

        try
        {
            Assert.Equal(2, responses.Count(r => r.StatusCode == HttpStatusCode.Accepted));
            Assert.Equal(6, responses.Count(r => r.StatusCode == HttpStatusCode.TooManyRequests));
            foreach (var refused in responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests))
                await AssertProblemAsync(refused, 429, "too_many_executions");
        }
        finally
        {
            foreach (var response in responses)
                response.Dispose();
        }
    }

    private static readonly string UnknownExecution = $"/api/v1/executions/{Guid.NewGuid()}";

    /// <summary>Small limits where the test sets them, and limits it will not reach everywhere else.</summary>
    private static Dictionary<string, string?> Limits(int perSubject = 100_000, int perIp = 100_000, int executions = 100_000, int concurrent = 100_000) => new()
    {
        ["RateLimits:PerSubjectPerMinute"] = perSubject.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimits:PerIpPerMinute"] = perIp.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimits:ExecutionsPerSubjectPerMinute"] = executions.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimits:MaxConcurrentExecutionsPerSubject"] = concurrent.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private BackendFactory Factory(Dictionary<string, string?> settings)
    {
        Backend(settings, out var factory).Dispose();
        return factory;
    }

    /// <summary>
    /// An anonymous client of <paramref name="backend"/> whose requests come from the address in
    /// <see cref="PeerHeader"/>: the filter runs before the Backend's pipeline, so the Backend sees it as the TCP peer.
    /// (The derived factory is disposed with its parent.)
    /// </summary>
    private static HttpClient AnonymousWithPeers(BackendFactory backend)
    {
        var client = backend.WithWebHostBuilder(builder => builder.ConfigureServices(services => services.AddTransient<IStartupFilter, PeerAddressFilter>()))
            .CreateClient();
        client.DefaultRequestHeaders.Authorization = null;
        return client;
    }

    private sealed class PeerAddressFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (context.Request.Headers.TryGetValue(PeerHeader, out var peer))
                    context.Connection.RemoteIpAddress = IPAddress.Parse(peer.ToString());
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient client, string path, string? peer = null, string? forwardedFor = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (peer is not null)
            request.Headers.Add(PeerHeader, peer);
        if (forwardedFor is not null)
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        return await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
    }

    private static Task<HttpResponseMessage> SubmitAsync(HttpClient client, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/execute")
        {
            Content = new StringContent(AsyncBody, System.Text.Encoding.UTF8, "application/json"),
        };
        if (idempotencyKey is not null)
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        return client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
    }

    /// <summary>The Backend is up and its database migrated (a first request waits for that).</summary>
    private static async Task WarmUpAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/api/v1/history", Ct).WaitAsync(Bound, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    /// <summary>
    /// Requests of another subject until the replica counts in Redis: it counts in process until its first connection
    /// and a warm-up round trip are done, and a very loaded machine can still miss the 100 ms bound after that.
    /// </summary>
    private static async Task WaitForSharedCountingAsync(BackendFactory factory)
    {
        await WaitForRedisAsync(factory);
        var limiter = factory.Services.GetRequiredService<AgentLabRateLimiter>();
        var client = factory.CreateClientFor("warm-up");
        var deadline = DateTimeOffset.UtcNow + Bound;
        while (true)
        {
            (await GetAsync(client, UnknownExecution)).Dispose();
            if (limiter.State.Mode == RateLimitState.Shared)
                return;
            Assert.True(DateTimeOffset.UtcNow < deadline, $"the Backend does not count in Redis: {limiter.State.Detail}");
            await Task.Delay(200, Ct);
        }
    }

    private static async Task WaitForRedisAsync(WebApplicationFactory<AgentLab.Backend.BackendMarker> factory)
    {
        var redis = factory.Services.GetRequiredService<RedisConnection>();
        var deadline = DateTimeOffset.UtcNow + Bound;
        while (!redis.IsConnected)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, "the Backend did not connect to Redis");
            await Task.Delay(50, Ct);
        }
    }

    /// <summary>
    /// Windows are whole wall-clock minutes: a test that counts a few requests starts early in one, so that a window
    /// boundary cannot reset its counts halfway (waits at most a few seconds, in about one run in ten).
    /// </summary>
    private static async Task FreshWindowAsync()
    {
        var left = 60_000 - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() % 60_000;
        if (left < 6_000)
            await Task.Delay(TimeSpan.FromMilliseconds(left + 50), Ct);
    }

    private static void AssertRetryAfterWithinWindow(HttpResponseMessage response)
    {
        var retryAfter = response.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 60);
    }
}
