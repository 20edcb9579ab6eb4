using System.Net;
using System.Net.Http.Headers;
using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Hosting;
using static AgentLab.Tests.AppHost.RunnerTestKit;
using static AgentLab.Tests.AppHost.Dashboard.DashboardWebKit;

namespace AgentLab.Tests.AppHost.Dashboard;

public sealed class DashboardAccessTests
{
    private const string Token = "0123456789abcdef-test-token";

    private static async Task<LabApp> StartAsync(CancellationToken ct, params (string Key, string Value)[] settings)
    {
        var builder = NewBuilder(new StringWriter(), settings);
        builder.AddExecutable("web", Sh(UntilTerm));
        var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        return app;
    }

    [Fact]
    public async Task Start_AnyAddressWithoutToken_RefusesWithTheReason()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter(), ("Dashboard:Address", "0.0.0.0"));
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<LabStartupException>(() => app.StartAsync(ct).WaitAsync(Bound, ct));

        Assert.Contains("without an access token", error.Message);
        Assert.Contains("Dashboard:AccessToken", error.Message);
        Assert.Empty(web.Resource.Log.Snapshot());
    }

    [Fact]
    public async Task OtlpReceiver_ServicesGetARandomKeyPerRun_AndExportsWithoutItAreRefused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var first = new LabDashboard(new DashboardOptions { OtlpPort = 0 });
        await using var second = new LabDashboard(new DashboardOptions { OtlpPort = 0 });
        await first.StartReceiverAsync(ct).WaitAsync(Bound, ct);
        await second.StartReceiverAsync(ct).WaitAsync(Bound, ct);
        var headers = first.ServiceEnvironment()["OTEL_EXPORTER_OTLP_HEADERS"];
        var key = headers["x-otlp-api-key=".Length..];
        using var http = new HttpClient { BaseAddress = first.OtlpEndpoint };

        using var withKey = await PostLogAsync(http, key, ct);
        using var withoutKey = await PostLogAsync(http, null, ct);
        using var otherRunsKey = await PostLogAsync(http, second.ServiceEnvironment()["OTEL_EXPORTER_OTLP_HEADERS"]["x-otlp-api-key=".Length..], ct);

        Assert.StartsWith("x-otlp-api-key=", headers, StringComparison.Ordinal);
        Assert.Equal(32, key.Length);
        Assert.NotEqual(headers, second.ServiceEnvironment()["OTEL_EXPORTER_OTLP_HEADERS"]);
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, withoutKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, otherRunsKey.StatusCode);
        Assert.Equal(1, first.Telemetry.LogCount);
    }

    [Fact]
    public async Task OtlpReceiver_ConfiguredKey_IsTheOneServicesGet()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var dashboard = new LabDashboard(new DashboardOptions { OtlpPort = 0, OtlpApiKey = "my-collector-key-0123" });
        await dashboard.StartReceiverAsync(ct).WaitAsync(Bound, ct);
        using var http = new HttpClient { BaseAddress = dashboard.OtlpEndpoint };

        using var response = await PostLogAsync(http, "my-collector-key-0123", ct);

        Assert.Equal("x-otlp-api-key=my-collector-key-0123", dashboard.ServiceEnvironment()["OTEL_EXPORTER_OTLP_HEADERS"]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("short-key")]
    [InlineData("a-long-enough-key,x-other=1")]
    public async Task Start_OtlpApiKeyTooShortOrWithSeparators_RefusesWithTheReason(string key)
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter(), ("Dashboard:OtlpApiKey", key));
        var web = builder.AddExecutable("web", Sh(UntilTerm));
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<LabStartupException>(() => app.StartAsync(ct).WaitAsync(Bound, ct));

        Assert.Contains("Dashboard:OtlpApiKey must be at least 16", error.Message, StringComparison.Ordinal);
        Assert.Empty(web.Resource.Log.Snapshot());
    }

    private static Task<HttpResponseMessage> PostLogAsync(HttpClient http, string? apiKey, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/logs")
        {
            Content = new ByteArrayContent(Google.Protobuf.MessageExtensions.ToByteArray(OtlpFake.Logs("svc", OtlpFake.Log(9, "hello")))),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        if (apiKey is not null)
            request.Headers.Add("x-otlp-api-key", apiKey);
        return http.SendAsync(request, ct).WaitAsync(Bound, ct);
    }

    [Fact]
    public async Task Token_NoCookie_ApiAnswers401AndPagesRedirectToLogin()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct, ("Dashboard:AccessToken", Token));
        using var client = Client(app);

        using var api = await client.GetAsync("api/resources", ct).WaitAsync(Bound, ct);
        using var page = await client.GetAsync("/", ct).WaitAsync(Bound, ct);
        using var login = await client.GetAsync("login", ct).WaitAsync(Bound, ct);
        var form = await login.Content.ReadAsStringAsync(ct);

        Assert.Equal(HttpStatusCode.Unauthorized, api.StatusCode);
        Assert.Equal("dashboard_token_required", (await JsonAsync(api, ct)).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal("/login", page.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("<form method=\"get\" action=\"/login\">", form);
        Assert.DoesNotContain("<script", form);
        Assert.DoesNotContain(Token, form);
    }

    [Fact]
    public async Task Login_WrongToken_Answers401WithoutCookie()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct, ("Dashboard:AccessToken", Token));
        using var client = Client(app);

        using var response = await client.GetAsync($"login?t={Token}x", ct).WaitAsync(Bound, ct);
        var body = await response.Content.ReadAsStringAsync(ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
        Assert.DoesNotContain(Token, body);
    }

    [Fact]
    public async Task Login_RightToken_SetsACookieThatOpensTheApi()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct, ("Dashboard:AccessToken", Token));
        using var client = Client(app);

        using var login = await client.GetAsync($"login?t={Uri.EscapeDataString(Token)}", ct).WaitAsync(Bound, ct);
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/resources");
        request.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var api = await client.SendAsync(request, ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.Equal("/", login.Headers.Location?.OriginalString);
        Assert.StartsWith($"{DashboardAccess.CookieName}=", cookie);
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(Token, cookie);
        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
    }

    [Fact]
    public async Task Token_BearerHeader_OpensTheApiAndActions()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct, ("Dashboard:AccessToken", Token));
        using var client = Client(app);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);

        using var api = await client.GetAsync("api/resources", ct).WaitAsync(Bound, ct);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "api/resources");
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
        using var rejected = await client.SendAsync(wrong, ct).WaitAsync(Bound, ct);
        using var stop = await client.SendAsync(Post("api/resources/web/stop"), ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, api.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, rejected.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, stop.StatusCode);
    }

    [Fact]
    public async Task Host_NotLoopbackName_Answers400()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct);
        using var client = Client(app);
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/resources");
        request.Headers.Host = "evil.example";
        using var localhost = new HttpRequestMessage(HttpMethod.Get, "api/resources");
        localhost.Headers.Host = $"localhost:{app.Dashboard!.Url!.Port}";

        using var response = await client.SendAsync(request, ct).WaitAsync(Bound, ct);
        using var allowed = await client.SendAsync(localhost, ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("host_not_allowed", (await JsonAsync(response, ct)).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/api/resources")]
    [InlineData("/api/resources/nope/console")]
    public async Task Headers_EveryResponse_CarriesCspAndNosniff(string path)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var app = await StartAsync(ct);
        using var client = Client(app);

        using var response = await client.GetAsync(path, ct).WaitAsync(Bound, ct);

        Assert.Equal(DashboardAccess.ContentSecurityPolicy, Assert.Single(response.Headers.GetValues("Content-Security-Policy")));
        Assert.Contains("frame-ancestors 'none'", DashboardAccess.ContentSecurityPolicy);
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
    }
}
