using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class ProblemDetailsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private sealed record Body(string Prompt);

    private static Task<TestHost> StartAsync() => TestHost.StartAsync(app =>
    {
        app.MapGet("/problem", () => Problems.Create(422, "model_not_found", "Model not found", "No model 'x' is installed."));
        app.MapGet("/boom", string () => throw new InvalidOperationException("secret connection string"));
        app.MapGet("/only-get", () => "ok");
        app.MapPost("/body", (Body body) => body.Prompt);
        app.MapPost("/raw", async (HttpRequest request) =>
        {
            using var reader = new StreamReader(request.Body);
            return (await reader.ReadToEndAsync()).Length;
        });
    }, b => b.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024));

    private static async Task<(HttpResponseMessage Response, JsonElement Problem)> SendAsync(HttpClient client, HttpRequestMessage request)
    {
        var ct = TestContext.Current.CancellationToken;
        var response = await client.SendAsync(request, ct).WaitAsync(Timeout, ct);
        var json = await response.Content.ReadAsStringAsync(ct);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return (response, JsonDocument.Parse(json).RootElement.Clone());
    }

    private static void AssertTraceId(JsonElement problem)
    {
        var traceId = problem.GetProperty("trace_id").GetString();
        Assert.Matches("^[0-9a-f]{32}$", traceId);
        Assert.False(problem.TryGetProperty("traceId", out _));
    }

    [Fact]
    public async Task ProblemsCreate_FromHandler_KeepsCodeAndGetsTraceId()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();

        var (response, problem) = await SendAsync(client, new HttpRequestMessage(HttpMethod.Get, "/problem"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Equal("model_not_found", problem.GetProperty("code").GetString());
        Assert.Equal("No model 'x' is installed.", problem.GetProperty("detail").GetString());
        AssertTraceId(problem);
    }

    [Fact]
    public async Task ProblemsCreate_WithTraceparent_TraceIdIsTheCallersTrace()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        var request = new HttpRequestMessage(HttpMethod.Get, "/problem");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

        var (_, problem) = await SendAsync(client, request);

        Assert.Equal(traceId, problem.GetProperty("trace_id").GetString());
    }

    [Fact]
    public async Task UnhandledException_Returns500ProblemWithoutMessage()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();

        var (response, problem) = await SendAsync(client, new HttpRequestMessage(HttpMethod.Get, "/boom"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("internal_error", problem.GetProperty("code").GetString());
        AssertTraceId(problem);
        Assert.DoesNotContain("secret", problem.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnmatchedRoute_Returns404Problem()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();

        var (response, problem) = await SendAsync(client, new HttpRequestMessage(HttpMethod.Get, "/nowhere"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", problem.GetProperty("code").GetString());
        AssertTraceId(problem);
    }

    [Fact]
    public async Task WrongMethod_Returns405Problem()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();

        var (response, problem) = await SendAsync(client, new HttpRequestMessage(HttpMethod.Delete, "/only-get"));

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal("method_not_allowed", problem.GetProperty("code").GetString());
        AssertTraceId(problem);
    }

    [Fact]
    public async Task MalformedJsonBody_Returns400Problem()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();
        var request = new HttpRequestMessage(HttpMethod.Post, "/body") { Content = new StringContent("{not json", Encoding.UTF8, "application/json") };

        var (response, problem) = await SendAsync(client, request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("bad_request", problem.GetProperty("code").GetString());
        AssertTraceId(problem);
    }

    [Fact]
    public async Task OversizedBody_Returns413Problem()
    {
        await using var host = await StartAsync();
        using var client = host.CreateClient();
        var content = new ByteArrayContent(new byte[4096]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var request = new HttpRequestMessage(HttpMethod.Post, "/raw") { Content = content };

        var (response, problem) = await SendAsync(client, request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("payload_too_large", problem.GetProperty("code").GetString());
        AssertTraceId(problem);
    }

    [Theory]
    [InlineData(429, "rate_limited")]
    [InlineData(503, "unavailable")]
    [InlineData(413, "payload_too_large")]
    [InlineData(418, "client_error")]
    public void DefaultCode_ForStatus_IsStable(int status, string code)
    {
        var actual = Problems.DefaultCode(status);

        Assert.Equal(code, actual);
    }
}
