using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// The JWT matrix against a real Backend: every token the Backend must refuse gets 401 with the right code and a
/// WWW-Authenticate header, never an echo of the token. Tokens are assembled by hand (header, payload, signature),
/// so the test does not trust the library that validates them to also build them.
/// </summary>
public sealed class JwtValidationTests : BackendTestBase
{
    /// <summary>An endpoint that needs a token and answers 200 to any valid one.</summary>
    private const string Protected = "/api/v1/graphs";

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static Dictionary<string, object> Claims(string sub = "alice", long? exp = null, long? nbf = null,
        string iss = "agentlab", string aud = "agentlab-api", bool withExp = true)
    {
        var claims = new Dictionary<string, object>
        {
            ["sub"] = sub, ["iss"] = iss, ["aud"] = aud, ["iat"] = Now - 5, ["nbf"] = nbf ?? Now - 5,
        };
        if (withExp)
            claims["exp"] = exp ?? Now + 3600;
        return claims;
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string B64(object json) => B64(JsonSerializer.SerializeToUtf8Bytes(json));

    /// <summary>header.payload.signature, the signature made by <paramref name="sign"/> over "header.payload".</summary>
    private static string Token(Dictionary<string, object> claims, string alg = "HS256", Func<byte[], byte[]>? sign = null)
    {
        var input = B64(new Dictionary<string, object> { ["alg"] = alg, ["typ"] = "JWT" }) + "." + B64(claims);
        sign ??= data => HMACSHA256.HashData(TestTokens.Key, data);
        return input + "." + B64(sign(Encoding.ASCII.GetBytes(input)));
    }

    private async Task<HttpResponseMessage> GetWithAsync(HttpClient client, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Protected);
        if (token is not null)
            request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        return await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
    }

    /// <summary>401 with <paramref name="code"/>, a Bearer challenge, and the token nowhere in the answer.</summary>
    private static async Task AssertRefusedAsync(HttpResponseMessage response, string code, string? token)
    {
        var body = await AssertProblemAsync(response, 401, code);
        var challenge = string.Join(", ", response.Headers.WwwAuthenticate.Select(h => h.ToString()));
        Assert.StartsWith("Bearer", challenge, StringComparison.Ordinal);
        if (token is null)
            return;
        var answer = body.GetRawText() + string.Join("\n", response.Headers.Select(h => $"{h.Key}: {string.Join(",", h.Value)}"));
        // Neither the token nor any of its parts (the signature is the secret-looking one) comes back.
        foreach (var part in token.Split('.').Where(p => p.Length >= 8))
            Assert.DoesNotContain(part, answer, StringComparison.Ordinal);
    }

    private HttpClient Anonymous()
    {
        Backend(null, out var factory);
        return factory.CreateAnonymousClient();
    }

    [Fact]
    public async Task Jwt_ValidHandMadeToken_200()
    {
        var client = Anonymous();

        var response = await GetWithAsync(client, Token(Claims()));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Jwt_NoAuthorizationHeader_401UnauthorizedWithChallenge()
    {
        var client = Anonymous();

        var response = await GetWithAsync(client, null);

        await AssertRefusedAsync(response, "unauthorized", null);
    }

    /// <summary>The refused cases by name (the tokens stay out of the test names, which end up in logs).</summary>
    public static TheoryData<string> Refused() => [.. RefusedTokens().Keys];

    private static Dictionary<string, string> RefusedTokens()
    {
        var key = TestTokens.Key;
        var otherKey = RandomNumberGenerator.GetBytes(32);
        var valid = Token(Claims());
        var parts = valid.Split('.');
        var tampered = parts[0] + "." + B64(Claims(sub: "admin")) + "." + parts[2];
        return new Dictionary<string, string>
        {
            // alg none: no signature at all (RFC 8725 §3.1).
            ["alg none"] = B64(new Dictionary<string, object> { ["alg"] = "none", ["typ"] = "JWT" }) + "." + B64(Claims()) + ".",
            ["HS256 with another key"] = Token(Claims(), sign: d => HMACSHA256.HashData(otherKey, d)),
            // The right key, but an algorithm the Backend does not pin.
            ["HS512 with the right key"] = Token(Claims(), "HS512", d => HMACSHA512.HashData(key, d)),
            // Key confusion: "RS256" whose signature is an HMAC with the shared key (a verifier that trusts alg could accept it).
            ["RS256 header, HMAC signature"] = Token(Claims(), "RS256"),
            ["wrong issuer"] = Token(Claims(iss: "someone-else")),
            ["wrong audience"] = Token(Claims(aud: "another-api")),
            ["tampered payload"] = tampered,
            ["no exp"] = Token(Claims(withExp: false)),
            ["malformed: not a JWT"] = "not-a-jwt",
            ["malformed: two parts"] = parts[0] + "." + parts[1],
            ["malformed: bad base64"] = "@@@." + parts[1] + "." + parts[2],
        };
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Jwt_BadToken_401InvalidTokenWithoutEcho(string @case)
    {
        var client = Anonymous();
        var token = RefusedTokens()[@case];

        var response = await GetWithAsync(client, token);

        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{@case}: got {(int)response.StatusCode}");
        await AssertRefusedAsync(response, "invalid_token", token);
    }

    [Fact]
    public async Task Jwt_ExpiredBeyondSkew_401TokenExpired()
    {
        var client = Anonymous();
        var token = Token(Claims(exp: Now - 90, nbf: Now - 3600));

        var response = await GetWithAsync(client, token);

        await AssertRefusedAsync(response, "token_expired", token);
    }

    [Fact]
    public async Task Jwt_ExpiredWithinSkew_Accepted()
    {
        var client = Anonymous();

        // 10 s past exp, inside the 30 s clock skew.
        var response = await GetWithAsync(client, Token(Claims(exp: Now - 10, nbf: Now - 3600)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Jwt_NotBeforeInTheFuture_401TokenNotYetValid()
    {
        var client = Anonymous();
        var token = Token(Claims(nbf: Now + 600));

        var response = await GetWithAsync(client, token);

        await AssertRefusedAsync(response, "token_not_yet_valid", token);
    }

    [Fact]
    public async Task Jwt_NotBearerScheme_401InvalidToken()
    {
        var client = Anonymous();
        using var request = new HttpRequestMessage(HttpMethod.Get, Protected);
        request.Headers.TryAddWithoutValidation("Authorization", "Basic YWxpY2U6c2VjcmV0");

        var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.DoesNotContain("YWxpY2U6c2VjcmV0", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Endpoints_HealthAndReady_AnswerWithoutToken()
    {
        var client = Anonymous();

        var health = await client.GetAsync("/api/v1/health", Ct).WaitAsync(Bound, Ct);
        var ready = await client.GetAsync("/api/v1/ready", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.NotEqual(HttpStatusCode.Unauthorized, ready.StatusCode);     // 200 or 503 not_ready: never a 401
    }

    [Fact]
    public async Task Endpoints_EveryOtherApiEndpoint_401WithoutToken()
    {
        Backend(null, out var factory);
        var client = factory.CreateAnonymousClient();
        // From the endpoint data source, so an endpoint added later is covered without touching this test.
        var endpoints = factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.TrimStart('/').StartsWith("api/v1", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (Method: m, Endpoint: e)))
            .ToList();
        var anonymous = endpoints.Where(e => e.Endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            .Select(e => "/" + e.Endpoint.RoutePattern.RawText!.TrimStart('/')).Distinct().Order().ToList();

        var wrong = new List<string>();
        foreach (var (method, endpoint) in endpoints.Where(e => e.Endpoint.Metadata.GetMetadata<IAllowAnonymous>() is null))
        {
            var path = ConcretePath(endpoint.RoutePattern);
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method is "POST" or "PUT" or "PATCH")
                request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
            var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
            var code = response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                ? (await JsonAsync(response)).GetProperty("code").GetString()
                : null;
            if (response.StatusCode != HttpStatusCode.Unauthorized || code != "unauthorized" || response.Headers.WwwAuthenticate.Count == 0)
                wrong.Add($"{method} {path}: {(int)response.StatusCode} {code}");
        }

        Assert.Equal(new[] { "/api/v1/health", "/api/v1/ready" }, anonymous);
        Assert.True(endpoints.Count >= 10, $"only {endpoints.Count} /api/v1 endpoints found");
        Assert.Empty(wrong);
    }

    /// <summary>The pattern with each parameter filled in (a GUID for ids, a name otherwise).</summary>
    private static string ConcretePath(Microsoft.AspNetCore.Routing.Patterns.RoutePattern pattern)
    {
        var segments = pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart literal => literal.Content,
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart parameter =>
                parameter.Name == "name" ? "some-graph" : Guid.NewGuid().ToString(),
            Microsoft.AspNetCore.Routing.Patterns.RoutePatternSeparatorPart separator => separator.Content,
            _ => "",
        })));
        return "/" + string.Join("/", segments);
    }
}
