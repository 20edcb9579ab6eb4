using System.Net;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.LabService;

/// <summary><c>POST /orchestrate/graphs/validate</c> over HTTP: no model server is needed (or reachable) for it.</summary>
public sealed class GraphValidationApiTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private const string ReviewLoop = """
        { "name": "review-loop", "entry": "writer",
          "nodes": [ { "name": "writer", "role": "You write.", "model": "mistral7b" },
                     { "name": "critic", "role": "You judge.", "output": "verdict" } ],
          "edges": [ { "from": "writer", "to": "critic" },
                     { "from": "critic", "to": "writer", "when": "revise" },
                     { "from": "critic", "to": "$end", "when": "pass" } ] }
        """;

    private readonly WebApplicationFactory<LabServiceMarker> _factory = new WebApplicationFactory<LabServiceMarker>()
        .WithWebHostBuilder(b => b.UseSetting("ConnectionStrings:ollama", "Endpoint=http://127.0.0.1:9"));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(HttpResponseMessage Response, JsonElement Body)> PostAsync(string body, string contentType = "application/json")
    {
        var client = _factory.CreateClient();
        var response = await client.PostAsync("/orchestrate/graphs/validate", new StringContent(body, Encoding.UTF8, contentType), Ct)
            .WaitAsync(Bound, Ct);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct).WaitAsync(Bound, Ct)).RootElement;
        return (response, json);
    }

    [Fact]
    public async Task Validate_ValidGraph_200WithCounts()
    {
        var (response, body) = await PostAsync(ReviewLoop);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(body.GetProperty("valid").GetBoolean());
        Assert.Equal("review-loop", body.GetProperty("name").GetString());
        Assert.Equal(2, body.GetProperty("nodes").GetInt32());
        Assert.Equal(3, body.GetProperty("edges").GetInt32());
        Assert.Equal(20, body.GetProperty("max_steps").GetInt32());
    }

    [Fact]
    public async Task Validate_UnknownNode_400InvalidGraphWithPathAndMessage()
    {
        var (response, body) = await PostAsync(ReviewLoop.Replace("\"to\": \"$end\"", "\"to\": \"critc\"", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("invalid_graph", body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("trace_id").GetString()));
        var error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal("edges[2].to", error.GetProperty("path").GetString());
        Assert.Equal("unknown node 'critc'; known: writer, critic, $end.", error.GetProperty("message").GetString());
        Assert.Contains("edges[2].to", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_CycleWithNoExit_400NamingTheCycle()
    {
        var json = ReviewLoop.Replace("\"to\": \"$end\", \"when\": \"pass\"", "\"to\": \"writer\", \"when\": \"pass\"", StringComparison.Ordinal)
            .Replace("\"when\": \"revise\"", "\"when\": \"fail\"", StringComparison.Ordinal);

        var (response, body) = await PostAsync(json);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var messages = body.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("message").GetString()).ToList();
        Assert.Contains(messages, m => m!.StartsWith("cycle writer → critic → writer has no edge leaving it", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Validate_BrokenJson_400InvalidJsonWithPath()
    {
        var (response, body) = await PostAsync("""{"name": "g", "max_steps": "ten"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_json", body.GetProperty("code").GetString());
        Assert.Equal("$.max_steps", body.GetProperty("json_path").GetString());
    }

    [Fact]
    public async Task Validate_UnknownMember_400InvalidJson()
    {
        var (response, body) = await PostAsync(ReviewLoop.Replace("\"entry\"", "\"start\": \"writer\", \"entry\"", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_json", body.GetProperty("code").GetString());
        Assert.Contains("start", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_JsonNull_400InvalidGraph()
    {
        var (response, body) = await PostAsync("null");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("$", body.GetProperty("errors")[0].GetProperty("path").GetString());
    }

    [Fact]
    public async Task Validate_NotJson_415()
    {
        var (response, body) = await PostAsync("{}", "text/plain");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", body.GetProperty("code").GetString());
    }

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _factory.DisposeAsync();
}
