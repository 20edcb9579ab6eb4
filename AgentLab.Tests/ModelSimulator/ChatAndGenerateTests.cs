using System.Net;
using System.Text.Json;
using AgentLab.ModelSimulator;
using static AgentLab.Tests.ModelSimulator.SimulatorTestKit;

namespace AgentLab.Tests.ModelSimulator;

public sealed class ChatAndGenerateTests
{
    [Fact]
    public async Task Chat_Streaming_SendsTokenLinesThenOneDoneLineWithMetrics()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Explain photosynthesis in plants"));
        var lines = await response.LinesAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.ContentType()?.MediaType);
        Assert.Equal("agentlab-simulator", response.Headers.GetValues("X-Model-Server").Single());
        var tokens = lines[..^1];
        Assert.InRange(tokens.Count, 10, 120);
        Assert.All(tokens, l =>
        {
            Assert.False(l.GetProperty("done").GetBoolean());
            Assert.Equal("assistant", l.GetProperty("message").GetProperty("role").GetString());
            Assert.Equal("mistral:7b", l.GetProperty("model").GetString());
            Assert.True(DateTime.TryParse(l.GetProperty("created_at").GetString(), out _));
            Assert.False(l.TryGetProperty("eval_count", out _));
        });
        var final = lines[^1];
        Assert.True(final.GetProperty("done").GetBoolean());
        Assert.Equal("stop", final.GetProperty("done_reason").GetString());
        Assert.Equal("", final.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(tokens.Count, final.GetProperty("eval_count").GetInt32());
        Assert.True(final.GetProperty("prompt_eval_count").GetInt32() > 0);
        Assert.DoesNotContain("Explain photosynthesis in plants", Content(lines), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Chat_StreamFalse_ReturnsOneJsonObjectWithTheSameContentAsTheStream()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;
        var body = ChatBody("llama3.2", "Tell me about volcanoes", ""","options":{"seed":7}""");

        using var streamed = await http.PostAsync("/api/chat", body);
        var streamedContent = Content(await streamed.LinesAsync());
        using var single = await http.PostAsync("/api/chat", body.Replace("\"options\"", "\"stream\":false,\"options\""));
        var json = await single.JsonAsync();

        Assert.Equal("application/json", single.ContentType()?.MediaType);
        Assert.True(json.GetProperty("done").GetBoolean());
        Assert.Equal(streamedContent, json.GetProperty("message").GetProperty("content").GetString());
        Assert.True(json.GetProperty("eval_count").GetInt32() > 0);
    }

    [Fact]
    public async Task Chat_SameInputOnTwoHosts_GivesIdenticalContent_AndAnotherSeedChangesIt()
    {
        var (first, http1) = await StartAsync();
        await using var scope = first;
        var (second, http2) = await StartAsync();
        await using var scope2 = second;
        string Body(int seed) => ChatBody("mistral:7b", "¿Qué es la fotosíntesis?", $$""","stream":false,"options":{"seed":{{seed}}}""");

        var a = (await (await http1.PostAsync("/api/chat", Body(1))).JsonAsync()).GetProperty("message").GetProperty("content").GetString();
        var b = (await (await http2.PostAsync("/api/chat", Body(1))).JsonAsync()).GetProperty("message").GetProperty("content").GetString();
        var c = (await (await http1.PostAsync("/api/chat", Body(2))).JsonAsync()).GetProperty("message").GetProperty("content").GetString();

        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task Chat_Metrics_AgreeWithConfiguredLatencies()
    {
        var options = Fast();
        options.TimeToFirstTokenMs = 7;
        options.TokenLatencyMs = 2;
        options.LoadDurationMs = 30;
        var (host, http) = await StartAsync(options);
        await using var scope = host;

        using var cold = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Describe the ocean tides"));
        var coldFinal = (await cold.LinesAsync())[^1];
        using var warm = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Describe mountain weather"));
        var warmLines = await warm.LinesAsync();
        var warmFinal = warmLines[^1];

        Assert.Equal(30_000_000, coldFinal.GetProperty("load_duration").GetInt64());
        Assert.False(warmFinal.TryGetProperty("load_duration", out _));
        foreach (var final in new[] { coldFinal, warmFinal })
        {
            var evalCount = final.GetProperty("eval_count").GetInt64();
            Assert.Equal(7_000_000, final.GetProperty("prompt_eval_duration").GetInt64());
            Assert.Equal(evalCount * 2_000_000, final.GetProperty("eval_duration").GetInt64());
            var parts = (final.TryGetProperty("load_duration", out var l) ? l.GetInt64() : 0)
                + final.GetProperty("prompt_eval_duration").GetInt64() + final.GetProperty("eval_duration").GetInt64();
            Assert.True(final.GetProperty("total_duration").GetInt64() >= parts);
        }
        Assert.Equal(warmLines.Count - 1, warmFinal.GetProperty("eval_count").GetInt32());
    }

    [Fact]
    public async Task Chat_ZeroLatencies_ReportMeasuredNonZeroDurations()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Summarise the history of Rome", ""","stream":false"""));
        var json = await response.JsonAsync();

        Assert.True(json.GetProperty("eval_duration").GetInt64() > 0);
        Assert.True(json.GetProperty("prompt_eval_duration").GetInt64() > 0);
        Assert.True(json.GetProperty("total_duration").GetInt64() > 0);
    }

    [Fact]
    public async Task Chat_PerRequestLatencyHeaders_OverrideTheConfiguration()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Name a colour", ""","stream":false"""),
            headers: [(Fault.TokenLatencyHeader, "1"), (Fault.TtftHeader, "3")]);
        var json = await response.JsonAsync();

        Assert.Equal(3_000_000, json.GetProperty("prompt_eval_duration").GetInt64());
        Assert.Equal(json.GetProperty("eval_count").GetInt64() * 1_000_000, json.GetProperty("eval_duration").GetInt64());
    }

    [Fact]
    public async Task Chat_NumPredict_CapsTheReplyWithDoneReasonLength()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("mistral:7b", "Write about rivers", ""","options":{"num_predict":4}"""));
        var lines = await response.LinesAsync();

        Assert.Equal(5, lines.Count);
        Assert.Equal("length", lines[^1].GetProperty("done_reason").GetString());
        Assert.Equal(4, lines[^1].GetProperty("eval_count").GetInt32());
    }

    [Fact]
    public async Task Chat_ModelWithoutTag_IsTheLatestTag()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var a = await (await http.PostAsync("/api/chat", ChatBody("llama3.2", "Hello there", ""","stream":false"""))).JsonAsync();
        var b = await (await http.PostAsync("/api/chat", ChatBody("llama3.2:latest", "Hello there", ""","stream":false"""))).JsonAsync();

        Assert.Equal(a.GetProperty("message").GetProperty("content").GetString(), b.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("llama3.2", a.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Chat_ThinkingModel_StreamsThinkingBeforeContent_AndOtherModelsRefuseThink()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var qwen = await http.PostAsync("/api/chat", ChatBody("qwen3:4b", "Plan a trip to Lisbon"));
        var lines = await qwen.LinesAsync();
        using var phi = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Plan a trip", ""","think":true"""));

        Assert.True(lines[0].GetProperty("message").TryGetProperty("thinking", out var thinking) && thinking.GetString()!.Length > 0);
        Assert.Equal("", lines[0].GetProperty("message").GetProperty("content").GetString());
        Assert.NotEmpty(Content(lines));
        Assert.Equal(HttpStatusCode.BadRequest, phi.StatusCode);
        Assert.Equal("\"phi3:mini\" does not support thinking", (await phi.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Chat_FormatSchema_ContentIsAJsonDocumentValidAgainstTheSchema()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;
        const string schema = """
            {"type":"object","required":["name","age","tags","address","mood"],"properties":{
              "name":{"type":"string","minLength":12},
              "age":{"type":"integer","minimum":18,"maximum":21},
              "score":{"type":"number","minimum":0.5,"maximum":0.6},
              "active":{"type":"boolean"},
              "mood":{"type":"string","enum":["happy","calm"]},
              "tags":{"type":"array","items":{"type":"string"},"minItems":4},
              "address":{"type":"object","required":["city"],"properties":{"city":{"type":"string"},"zip":{"type":"integer"}}},
              "nothing":{"type":"null"}}}
            """;

        using var streamed = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Describe Alice from Paris", $""","format":{schema}"""));
        var lines = await streamed.LinesAsync();
        var content = Content(lines);

        using var document = JsonDocument.Parse(content);
        Assert.Null(Violation(document.RootElement, JsonDocument.Parse(schema).RootElement));
        Assert.True(lines.Count > 5, "the document is streamed in token-sized chunks");
    }

    [Fact]
    public async Task Chat_FormatJson_ContentIsAJsonObject()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var json = await (await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Give facts about Mars", ""","format":"json","stream":false"""))).JsonAsync();

        using var document = JsonDocument.Parse(json.GetProperty("message").GetProperty("content").GetString()!);
        Assert.Equal(JsonValueKind.Object, document.RootElement.ValueKind);
    }

    private const string WeatherTools = """
        ,"tools":[
          {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}}}}},
          {"type":"function","function":{"name":"get_weather","description":"Weather for a city","parameters":{"type":"object",
            "required":["city","days"],"properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1,"maximum":3},
            "unit":{"type":"string","enum":["celsius","fahrenheit"]}}}}}]
        """;

    [Fact]
    public async Task Chat_WithTools_CallsTheToolNamedInThePromptWithArgumentsMatchingItsSchema()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("llama3.2", "Use get weather for Tokyo please", WeatherTools));
        var lines = await response.LinesAsync();

        Assert.Equal(2, lines.Count);
        var call = lines[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Matches("^call_[a-z0-9]{8}$", call.GetProperty("id").GetString());
        Assert.Equal(0, call.GetProperty("function").GetProperty("index").GetInt32());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        var arguments = call.GetProperty("function").GetProperty("arguments");
        var parameters = JsonDocument.Parse(WeatherTools[9..]).RootElement[1].GetProperty("function").GetProperty("parameters");
        Assert.Null(Violation(arguments, parameters));
        Assert.True(lines[1].GetProperty("done").GetBoolean());
    }

    [Fact]
    public async Task Chat_WithToolsAndNoToolNamed_CallsTheFirstTool_AndAfterAToolResultAnswersText()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;
        const string afterResult = """
            {"model":"mistral:7b","stream":false,"messages":[
              {"role":"user","content":"What time is it?"},
              {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_time","arguments":{}}}]},
              {"role":"tool","tool_name":"get_time","content":"12:00"}]
            """ + WeatherTools + "}";

        var first = await (await http.PostAsync("/api/chat", ChatBody("mistral:7b", "What time is it?", WeatherTools + ",\"stream\":false"))).JsonAsync();
        var text = await (await http.PostAsync("/api/chat", afterResult)).JsonAsync();

        Assert.Equal("get_time", first.GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString());
        Assert.False(text.GetProperty("message").TryGetProperty("tool_calls", out _));
        Assert.NotEmpty(text.GetProperty("message").GetProperty("content").GetString()!);
    }

    [Fact]
    public async Task Chat_ToolsOnAModelWithoutTools_Is400()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/chat", ChatBody("phi3:mini", "Weather?", WeatherTools));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("\"phi3:mini\" does not support tools", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Generate_Streaming_UsesResponseField_AndEndsWithContext()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"Why is the sky blue?"}""");
        var lines = await response.LinesAsync();

        Assert.All(lines[..^1], l => Assert.True(l.TryGetProperty("response", out _)));
        Assert.False(lines[0].TryGetProperty("message", out _));
        Assert.Equal(JsonValueKind.Array, lines[^1].GetProperty("context").ValueKind);
        Assert.Equal("", lines[^1].GetProperty("response").GetString());
    }

    [Fact]
    public async Task Generate_SystemPrompt_IsPartOfTheInput()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        var plain = await (await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"Describe cats","stream":false}""")).JsonAsync();
        var withSystem = await (await http.PostAsync("/api/generate", """{"model":"mistral:7b","prompt":"Describe cats","system":"Be terse","stream":false}""")).JsonAsync();

        Assert.NotEqual(plain.GetProperty("response").GetString(), withSystem.GetProperty("response").GetString());
        Assert.True(withSystem.GetProperty("prompt_eval_count").GetInt32() > plain.GetProperty("prompt_eval_count").GetInt32());
    }

    [Fact]
    public async Task Generate_EmbeddingModel_Is400()
    {
        var (host, http) = await StartAsync();
        await using var scope = host;

        using var response = await http.PostAsync("/api/generate", """{"model":"nomic-embed-text","prompt":"hi"}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("\"nomic-embed-text\" does not support generate", (await response.JsonAsync()).GetProperty("error").GetString());
    }
}
