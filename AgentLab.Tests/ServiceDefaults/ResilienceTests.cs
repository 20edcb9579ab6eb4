using System.Net;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class ResilienceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A fake peer that answers 503 to the first <paramref name="failures"/> calls, then 200, and counts them.</summary>
    private sealed class FlakyPeer
    {
        private int calls;

        public int Calls => Volatile.Read(ref calls);

        public IResult Handle(int failures, string? retryAfter = null)
        {
            var n = Interlocked.Increment(ref calls);
            if (n > failures)
                return TypedResults.Text("ok");
            return new RetryAfterResult(retryAfter);
        }

        private sealed class RetryAfterResult(string? retryAfter) : IResult
        {
            public Task ExecuteAsync(HttpContext httpContext)
            {
                if (retryAfter is not null)
                    httpContext.Response.Headers.RetryAfter = retryAfter;
                httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return Task.CompletedTask;
            }
        }
    }

    private static async Task<(TestHost Host, FlakyPeer Peer)> StartPeerAsync(int failures, string? retryAfter = null)
    {
        var peer = new FlakyPeer();
        var host = await TestHost.StartAsync(app =>
        {
            app.MapGet("/data", () => peer.Handle(failures, retryAfter));
            app.MapPost("/data", () => peer.Handle(failures, retryAfter));
        }, defaults: false);
        return (host, peer);
    }

    private static ServiceProvider Client(Uri peer, Action<IdempotentResilienceOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHttpClient("peer", c => c.BaseAddress = peer)
            .AddIdempotentResilienceHandler(o =>
            {
                o.BaseDelay = TimeSpan.FromMilliseconds(5);
                configure?.Invoke(o);
            });
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task Get_503ThenSuccess_RetriesAndSucceeds()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: 2);
        await using var _ = host;
        await using var sp = Client(host.Address);
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.GetAsync("/data", ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(3, peer.Calls);
    }

    [Fact]
    public async Task Post_503_IsNeverRetried()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: 2);
        await using var _ = host;
        await using var sp = Client(host.Address);
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.PostAsync("/data", new StringContent("{}"), ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, peer.Calls);
    }

    [Fact]
    public async Task Get_Always503_GivesUpAfterMaxRetries()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: int.MaxValue);
        await using var _ = host;
        await using var sp = Client(host.Address, o => o.MaxRetryAttempts = 2);
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.GetAsync("/data", ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(3, peer.Calls);
    }

    [Fact]
    public async Task Get_ConnectionRefused_RetriesThenThrowsHttpRequestException()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, _) = await StartPeerAsync(failures: 0);
        var address = host.Address;
        await host.DisposeAsync(); // nothing listens there any more
        await using var sp = Client(address, o => o.MaxRetryAttempts = 1);
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/data", ct).WaitAsync(Timeout, ct));
    }

    [Fact]
    public void RetryAfter_LongerThanCap_IsCapped()
    {
        using var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromMinutes(5));

        var delay = IdempotentPipelines.RetryAfter(response, TimeSpan.FromSeconds(2));

        Assert.Equal(TimeSpan.FromSeconds(2), delay);
    }

    [Fact]
    public async Task Get_503WithRetryAfter_RetriesAfterHonouringHeader()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: 1, retryAfter: "0");
        await using var _ = host;
        await using var sp = Client(host.Address);
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.GetAsync("/data", ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, peer.Calls);
    }

    [Fact]
    public async Task Get_503WithRetryAfterBeyondCap_IsPassedOnWithoutRetry()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: int.MaxValue, retryAfter: "10");
        await using var _ = host;
        await using var sp = Client(host.Address, o => o.MaxRetryAfter = TimeSpan.FromSeconds(1));
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.GetAsync("/data", ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(10), response.Headers.RetryAfter?.Delta);
        Assert.Equal(1, peer.Calls);
    }

    [Fact]
    public async Task Get_503WithRetryAfterBeyondTotalTimeout_IsPassedOnWithoutRetry()
    {
        var ct = TestContext.Current.CancellationToken;
        var (host, peer) = await StartPeerAsync(failures: int.MaxValue, retryAfter: "5");
        await using var _ = host;
        await using var sp = Client(host.Address, o => o.TotalTimeout = TimeSpan.FromSeconds(3));
        var client = sp.GetRequiredService<IHttpClientFactory>().CreateClient("peer");

        using var response = await client.GetAsync("/data", ct).WaitAsync(Timeout, ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, peer.Calls);
    }
}
