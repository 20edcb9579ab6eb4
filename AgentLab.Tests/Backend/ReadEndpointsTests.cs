using Microsoft.AspNetCore.Http;
using System.Net;

namespace AgentLab.Tests.Backend;

/// <summary>Models, health, readiness, CORS and the OpenAPI document.</summary>
public sealed class ReadEndpointsTests : BackendTestBase
{
    [Fact]
    public async Task Models_LabUp_ListsModelsInLabServiceShape()
    {
        var client = Backend();

        var response = await client.GetAsync("/api/v1/models", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await JsonAsync(response);
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var model = Assert.Single(body.GetProperty("models").EnumerateArray());
        Assert.Equal("mistral:7b", model.GetProperty("name").GetString());
        Assert.Equal("mistral7b", model.GetProperty("aliases")[0].GetString());
        Assert.Equal("7.2B", model.GetProperty("parameter_size").GetString());
        Assert.Equal(4109865159, model.GetProperty("size").GetInt64());
        Assert.True(model.GetProperty("loaded").GetBoolean());
        Assert.Equal(32768, model.GetProperty("context_length").GetInt32());
    }

    [Fact]
    public async Task Models_LabDown_LabUnavailable()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await client.GetAsync("/api/v1/models", Ct).WaitAsync(Bound, Ct);

        await AssertProblemAsync(response, 503, "lab_unavailable");
    }

    [Fact]
    public async Task HealthDetailed_LabServiceNameWithoutEndpoint_LabServiceUnhealthyNamingTheSetting()
    {
        var client = Backend(labAddress: new Uri("http://labservice"));

        var response = await client.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var labService = (await JsonAsync(response)).GetProperty("components").GetProperty("labservice");
        Assert.Equal("unhealthy", labService.GetProperty("status").GetString());
        Assert.Contains("services__labservice__http__0", labService.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_Always_Healthy()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await client.GetAsync("/api/v1/health", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", (await JsonAsync(response)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task HealthDetailed_LabUp_HealthyWithModelServerKind()
    {
        var client = Backend();

        var body = await JsonAsync(await client.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct));

        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("simulator", body.GetProperty("model_server").GetString());
        var components = body.GetProperty("components");
        Assert.Equal("healthy", components.GetProperty("labservice").GetProperty("status").GetString());
        Assert.True(components.GetProperty("labservice").GetProperty("latency_ms").GetDouble() >= 0);
        Assert.Equal("healthy", components.GetProperty("model_server").GetProperty("status").GetString());
        Assert.Equal(1.75, components.GetProperty("model_server").GetProperty("latency_ms").GetDouble());
        Assert.Equal("simulator answers", components.GetProperty("model_server").GetProperty("detail").GetString());
    }

    [Fact]
    public async Task HealthDetailed_ModelServerDown_UnhealthyButLabServiceHealthy()
    {
        Lab.Health = FakeLabService.Json(503, """
            {"status":"unhealthy","checks":{"model_server":{"status":"unhealthy","duration_ms":5,"description":"connection refused",
             "data":{"endpoint":"http://127.0.0.1:11434","server_kind":"ollama"}}}}
            """);
        var client = Backend();

        var body = await JsonAsync(await client.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct));

        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.Equal("ollama", body.GetProperty("model_server").GetString());
        Assert.Equal("healthy", body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString());
        Assert.Equal("unhealthy", body.GetProperty("components").GetProperty("model_server").GetProperty("status").GetString());
    }

    [Fact]
    public async Task HealthDetailed_LabDown_UnhealthyAndModelServerUnknown()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await client.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await JsonAsync(response);
        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.Equal("unknown", body.GetProperty("model_server").GetString());
        Assert.Equal("unhealthy", body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString());
        Assert.Equal("unknown", body.GetProperty("components").GetProperty("model_server").GetProperty("status").GetString());
    }

    [Fact]
    public async Task HealthDetailed_LabHangs_AnswersUnhealthyWithinItsBound()
    {
        Lab.Health = FakeLabService.Hang;
        var client = Backend(new Dictionary<string, string?> { ["LabService:HealthTimeoutSeconds"] = "0.5" });

        var body = await JsonAsync(await client.GetAsync("/api/v1/health/detailed", Ct).WaitAsync(Bound, Ct));

        Assert.Equal("unhealthy", body.GetProperty("components").GetProperty("labservice").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Ready_LabUp_Ready()
    {
        var client = Backend();

        var response = await client.GetAsync("/api/v1/ready", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ready", (await JsonAsync(response)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Ready_LabReportsItselfUnhealthy_NotReady()
    {
        Lab.Health = FakeLabService.Json(StatusCodes.Status503ServiceUnavailable, """{"status":"unhealthy","checks":{}}""");
        var client = Backend();

        var response = await client.GetAsync("/api/v1/ready", Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 503, "not_ready");
        Assert.Equal("labservice", body.GetProperty("missing")[0].GetString());
        Assert.Contains("unhealthy", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Ready_LabDown_NotReadyNamingLabService()
    {
        var client = Backend(labAddress: FakeLabService.ClosedAddress());

        var response = await client.GetAsync("/api/v1/ready", Ct).WaitAsync(Bound, Ct);

        var body = await AssertProblemAsync(response, 503, "not_ready");
        Assert.Equal("labservice", body.GetProperty("missing")[0].GetString());
    }

    [Fact]
    public async Task Cors_PreflightFromFrontend_Allowed()
    {
        var client = Backend();

        var response = await client.SendAsync(Preflight("http://localhost:3000"), Ct).WaitAsync(Bound, Ct);

        Assert.Equal("http://localhost:3000", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Cors_PreflightFromOtherOrigin_NotAllowed()
    {
        var client = Backend();

        var response = await client.SendAsync(Preflight("http://evil.example"), Ct).WaitAsync(Bound, Ct);

        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Cors_ConfiguredOrigins_ReplaceDefaults()
    {
        var client = Backend(new Dictionary<string, string?> { ["Cors:AllowedOrigins:0"] = "https://lab.example" });

        var allowed = await client.SendAsync(Preflight("https://lab.example"), Ct).WaitAsync(Bound, Ct);
        var old = await client.SendAsync(Preflight("http://localhost:3000"), Ct).WaitAsync(Bound, Ct);

        Assert.True(allowed.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.False(old.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Cors_ActualRequest_ExposesRetryAfterAndLocation()
    {
        var client = Backend();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/health");
        request.Headers.Add("Origin", "http://localhost:3000");

        var response = await client.SendAsync(request, Ct).WaitAsync(Bound, Ct);

        var exposed = string.Join(",", response.Headers.GetValues("Access-Control-Expose-Headers"));
        Assert.Contains("Retry-After", exposed, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Location", exposed, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task OpenApi_Document_ListsExecuteEndpoint()
    {
        var client = Backend();

        var response = await client.GetAsync("/openapi/v1.json", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var paths = (await JsonAsync(response)).GetProperty("paths");
        Assert.True(paths.TryGetProperty("/api/v1/execute", out var execute));
        Assert.Equal("Execute", execute.GetProperty("post").GetProperty("operationId").GetString());
        Assert.True(execute.GetProperty("post").GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.True(paths.TryGetProperty("/api/v1/health/detailed", out _));
    }

    [Fact]
    public async Task OpenApi_Document_AnonymousAndSaysWhichOperationsNeedABearerToken()
    {
        Backend(null, out var factory);
        using var anonymous = factory.CreateAnonymousClient();

        var response = await anonymous.GetAsync("/openapi/v1.json", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var document = await JsonAsync(response);
        var scheme = document.GetProperty("components").GetProperty("securitySchemes").GetProperty("Bearer");
        Assert.Equal("bearer", scheme.GetProperty("scheme").GetString());
        var paths = document.GetProperty("paths");
        var history = paths.GetProperty("/api/v1/history").GetProperty("get");
        Assert.True(history.GetProperty("security")[0].TryGetProperty("Bearer", out _));
        Assert.True(history.GetProperty("responses").TryGetProperty("401", out _));
        Assert.False(paths.GetProperty("/api/v1/health").GetProperty("get").TryGetProperty("security", out _));
    }

    [Fact]
    public async Task SwaggerUi_Served()
    {
        var client = Backend();

        var response = await client.GetAsync("/swagger/index.html", Ct).WaitAsync(Bound, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static HttpRequestMessage Preflight(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, "/api/v1/execute");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type");
        return request;
    }
}
