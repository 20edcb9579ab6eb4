using System.Net;
using System.Text.Json;
using static AgentLab.Tests.ModelSimulator.SimulatorTestKit;

namespace AgentLab.Tests.ModelSimulator;

public sealed class ModelManagementTests
{
    [Fact]
    public async Task Root_GetAndHead_SayOllamaIsRunningWithTheSimulatorHeader()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var get = await http.GetAsync("/", Ct).WaitAsync(Bound, Ct);
        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"), Ct).WaitAsync(Bound, Ct);

        Assert.Equal("Ollama is running", await get.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("agentlab-simulator", head.Headers.GetValues("X-Model-Server").Single());
    }

    [Fact]
    public async Task Version_IsConfigurable()
    {
        var options = Fast();
        options.Version = "0.99.1";
        var (host, http) = await StartAsync(options);
        await using var scope = host;

        var json = await (await http.GetAsync("/api/version", Ct).WaitAsync(Bound, Ct)).JsonAsync();

        Assert.Equal("0.99.1", json.GetProperty("version").GetString());
        Assert.Equal("0.99.1", host.Options.Version);
    }

    [Fact]
    public async Task Tags_ListsTheDefaultModelsWithOllamasShape()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var json = await (await http.GetAsync("/api/tags", Ct).WaitAsync(Bound, Ct)).JsonAsync();

        var models = json.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Superset(new HashSet<string> { "mistral:7b", "llama3.2:latest", "qwen3:4b", "phi3:mini", "nomic-embed-text:latest" }, models.Keys.ToHashSet());
        var mistral = models["mistral:7b"];
        Assert.Equal("mistral:7b", mistral.GetProperty("model").GetString());
        Assert.Matches("^[0-9a-f]{64}$", mistral.GetProperty("digest").GetString());
        Assert.True(mistral.GetProperty("size").GetInt64() > 0);
        Assert.True(mistral.TryGetProperty("modified_at", out _));
        var details = mistral.GetProperty("details");
        foreach (var field in new[] { "parent_model", "format", "family", "families", "parameter_size", "quantization_level" })
            Assert.True(details.TryGetProperty(field, out _), field);
    }

    [Fact]
    public async Task Show_KnownModel_HasContextLengthCapabilitiesAndTemplate_UnknownIs404()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var json = await (await http.PostAsync("/api/show", """{"model":"mistral:7b"}""")).JsonAsync();
        using var unknown = await http.PostAsync("/api/show", """{"model":"ghost"}""");

        Assert.Equal(32768, json.GetProperty("model_info").GetProperty("llama.context_length").GetInt32());
        Assert.Equal(["completion", "tools"], json.GetProperty("capabilities").EnumerateArray().Select(c => c.GetString()));
        foreach (var field in new[] { "parameters", "template", "modelfile", "modified_at", "details" })
            Assert.True(json.TryGetProperty(field, out _), field);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("model 'ghost' not found", (await unknown.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task EmptyChat_LoadsTheModel_AndWithKeepAliveZeroUnloadsIt()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var load = await http.PostAsync("/api/chat", """{"model":"phi3:mini","messages":[]}""");
        var loadJson = await load.JsonAsync();
        var loaded = await PsNamesAsync(http);
        var unloadJson = await (await http.PostAsync("/api/chat", """{"model":"phi3:mini","messages":[],"keep_alive":0}""")).JsonAsync();
        var afterUnload = await PsNamesAsync(http);

        Assert.Equal("application/json", load.ContentType()?.MediaType);
        Assert.Equal("load", loadJson.GetProperty("done_reason").GetString());
        Assert.True(loadJson.GetProperty("done").GetBoolean());
        Assert.Equal("", loadJson.GetProperty("message").GetProperty("content").GetString());
        Assert.Contains("phi3:mini", loaded);
        Assert.Equal("unload", unloadJson.GetProperty("done_reason").GetString());
        Assert.DoesNotContain("phi3:mini", afterUnload);
    }

    [Fact]
    public async Task EmptyGenerate_AnswersLoadWithAnEmptyResponse()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var json = await (await http.PostAsync("/api/generate", """{"model":"mistral:7b"}""")).JsonAsync();

        Assert.Equal("load", json.GetProperty("done_reason").GetString());
        Assert.Equal("", json.GetProperty("response").GetString());
    }

    [Fact]
    public async Task Ps_ExpiresAtFollowsKeepAlive()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;
        var before = DateTime.UtcNow;

        await (await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"hi","stream":false,"keep_alive":"10m"}""")).JsonAsync();
        await (await http.PostAsync("/api/generate", """{"model":"phi3:mini","prompt":"hi","stream":false,"keep_alive":-1}""")).JsonAsync();
        await (await http.PostAsync("/api/generate", """{"model":"llama3.2","prompt":"hi","stream":false,"keep_alive":0}""")).JsonAsync();
        var ps = (await (await http.GetAsync("/api/ps", Ct).WaitAsync(Bound, Ct)).JsonAsync()).GetProperty("models").EnumerateArray()
            .ToDictionary(m => m.GetProperty("name").GetString()!);

        var mistralExpiry = ps["mistral:7b"].GetProperty("expires_at").GetDateTime().ToUniversalTime();
        Assert.InRange(mistralExpiry, before.AddMinutes(9), DateTime.UtcNow.AddMinutes(11));
        Assert.True(ps["phi3:mini"].GetProperty("expires_at").GetDateTime().Year > 2200, "negative keep_alive keeps the model forever");
        Assert.False(ps.ContainsKey("llama3.2:latest"), "keep_alive 0 unloads after the request");
        Assert.True(ps["mistral:7b"].GetProperty("size_vram").GetInt64() > 0);
        Assert.True(ps["mistral:7b"].GetProperty("context_length").GetInt32() > 0);
    }

    [Theory]
    [InlineData("\"99999999h\"")]   // about 11,400 years: past DateTime.MaxValue when added to now
    [InlineData("1e15")]
    public async Task KeepAlive_BeyondTheCalendar_AnswersAndLeavesNothingInFlight(string keepAlive)
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/generate",
            """{"model":"mistral:7b","prompt":"hi","stream":false,"keep_alive":""" + keepAlive + "}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, host.Stats.InFlight);
    }

    [Fact]
    public async Task KeepAlive_Invalid_Is400()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"hi","keep_alive":"soon"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Pull_LibraryModel_StreamsProgressThenSuccess_AndTheModelAppearsInTags()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/pull", """{"model":"gemma3:1b"}""");
        var lines = await response.LinesAsync();
        var tags = await (await http.GetAsync("/api/tags", Ct).WaitAsync(Bound, Ct)).JsonAsync();

        var statuses = lines.Select(l => l.GetProperty("status").GetString()!).ToList();
        Assert.Equal("pulling manifest", statuses[0]);
        Assert.Equal(["verifying sha256 digest", "writing manifest", "success"], statuses[^3..]);
        var downloads = lines.Where(l => l.GetProperty("status").GetString()!.StartsWith("downloading ", StringComparison.Ordinal)).ToList();
        Assert.True(downloads.Count >= 3);
        Assert.All(downloads, d => Assert.StartsWith("sha256:", d.GetProperty("digest").GetString()));
        Assert.Contains(downloads, d => d.TryGetProperty("completed", out var c) && c.GetInt64() == d.GetProperty("total").GetInt64());
        Assert.Contains(tags.GetProperty("models").EnumerateArray(), m => m.GetProperty("name").GetString() == "gemma3:1b");
    }

    [Fact]
    public async Task Pull_StreamFalse_AnswersOneSuccessObject()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var json = await (await http.PostAsync("/api/pull", """{"model":"qwen2.5:0.5b","stream":false}""")).JsonAsync();

        Assert.Equal("""{"status":"success"}""", json.GetRawText());
    }

    [Fact]
    public async Task Pull_UnknownModel_StreamsAnErrorLine_AndWithStreamFalseIs500()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var streamed = await http.PostAsync("/api/pull", """{"model":"nothing:here"}""");
        var lines = await streamed.LinesAsync();
        using var single = await http.PostAsync("/api/pull", """{"model":"nothing:here","stream":false}""");

        Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        Assert.Equal("pull model manifest: file does not exist", lines[^1].GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.InternalServerError, single.StatusCode);
        Assert.Equal("pull model manifest: file does not exist", (await single.JsonAsync()).GetProperty("error").GetString());
    }

    private static async Task<List<string>> PsNamesAsync(HttpClient http)
    {
        var json = await (await http.GetAsync("/api/ps", Ct).WaitAsync(Bound, Ct)).JsonAsync();
        return [.. json.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!)];
    }
}
