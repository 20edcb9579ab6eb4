using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using AgentLab.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// Browsers on a foreign origin get no CORS grant, preflight or simple request alike; a configured origin does. A
/// WebSocket from a foreign page is refused on its Origin (the caller holds a valid token, so it is the Origin that
/// refuses, not authentication).
/// </summary>
public sealed class CorsTests : BackendTestBase
{
    private const string Allowed = "https://lab.example";
    private const string Foreign = "https://evil.example";

    private static readonly Dictionary<string, string?> Settings = new() { ["Cors:AllowedOrigins:0"] = Allowed };

    private static HttpRequestMessage Preflight(string origin, string path = "/api/v1/execute")
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");
        return request;
    }

    private static HttpRequestMessage Simple(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/graphs");
        request.Headers.Add("Origin", origin);
        return request;
    }

    [Fact]
    public async Task Preflight_ForeignOrigin_NoAllowOrigin()
    {
        var client = Backend(Settings);

        var response = await client.SendAsync(Preflight(Foreign), Ct).WaitAsync(Bound, Ct);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(response.Headers.Contains("Access-Control-Allow-Headers"));
    }

    [Fact]
    public async Task Preflight_ConfiguredOrigin_AllowedWithAuthorizationHeader()
    {
        var client = Backend(Settings);

        var response = await client.SendAsync(Preflight(Allowed), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("authorization", string.Join(",", response.Headers.GetValues("Access-Control-Allow-Headers")), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task SimpleRequest_ForeignOrigin_NoAllowOrigin()
    {
        var client = Backend(Settings);

        var response = await client.SendAsync(Simple(Foreign), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);     // served, but the browser may not read it
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task SimpleRequest_ConfiguredOrigin_AllowOrigin()
    {
        var client = Backend(Settings);

        var response = await client.SendAsync(Simple(Allowed), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(Allowed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    /// <summary>A WebSocket handshake by hand, so the refusal's problem body can be read.</summary>
    private static HttpRequestMessage Handshake(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/ws/executions/{Guid.NewGuid()}");
        request.Headers.Add("Connection", "Upgrade");
        request.Headers.Add("Upgrade", "websocket");
        request.Headers.Add("Sec-WebSocket-Version", "13");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)));
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Authorization", TestTokens.Header());
        return request;
    }

    [Fact]
    public async Task WebSocket_ForeignOriginWithValidToken_403OriginNotAllowed()
    {
        var all = new Dictionary<string, string?>(Settings) { ["urls"] = "http://127.0.0.1:0" };
        await using var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, all);
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        using var http = new HttpClient { BaseAddress = new Uri(address) };

        var foreign = await http.SendAsync(Handshake(Foreign), Ct).WaitAsync(Bound, Ct);
        var allowed = await http.SendAsync(Handshake(Allowed), Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(foreign, 403, "origin_not_allowed");
        // The same request from the allowed origin passes the Origin check and reaches the id lookup.
        await AssertProblemAsync(allowed, 404, "execution_not_found");
    }
}
