using System.Text.Json;
using AgentLab.LabService;
using AgentLab.LabService.Ollama;
using AgentLab.LabService.Orchestration.Tools;
using AgentLab.Tests.LabService;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.Orchestration.Tools;

public sealed class ToolRegistryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static OllamaClient CreateClient(Uri endpoint) =>
        new(new HttpClient { BaseAddress = endpoint, Timeout = Timeout.InfiniteTimeSpan }, Options.Create(new OllamaOptions()),
            Options.Create(new LabOptions()), NullLogger<OllamaClient>.Instance);

    [Fact]
    public void TryGet_AnyCase_FindsTheTool()
    {
        var registry = ToolRegistry.CreateDefault();

        var found = registry.TryGet("CALCULATOR", out var tool);

        Assert.True(found);
        Assert.IsType<CalculatorTool>(tool);
        Assert.False(registry.TryGet("shell", out _));
    }

    [Fact]
    public void All_BuiltInTools_AreOrderedByName()
    {
        var registry = ToolRegistry.CreateDefault();

        Assert.Equal(["calculator", "current_time", "text_stats"], registry.All.Select(t => t.Name));
        Assert.Equal(["calculator", "current_time", "text_stats"], registry.Names);
    }

    [Fact]
    public void Validate_UnknownNames_ReturnsEachOnceWithTheKnownList()
    {
        var registry = ToolRegistry.CreateDefault();

        var validation = registry.Validate(["Calculator", "shell", "text_stats", "SHELL", "http_get"]);

        Assert.False(validation.IsValid);
        Assert.Equal(["shell", "http_get"], validation.Unknown);
        Assert.Equal(["calculator", "current_time", "text_stats"], validation.Known);
    }

    [Fact]
    public void Validate_KnownNames_IsValid()
    {
        var registry = ToolRegistry.CreateDefault();

        var validation = registry.Validate(["current_time", "TEXT_STATS"]);

        Assert.True(validation.IsValid);
        Assert.Empty(validation.Unknown);
    }

    [Fact]
    public void Constructor_DuplicateNames_Throws()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new ToolRegistry([new CalculatorTool(), new CalculatorTool()]));

        Assert.Contains("'calculator'", ex.Message);
    }

    [Fact]
    public void AsAITools_Subset_ReturnsTheNamedToolsOnceEach()
    {
        var registry = ToolRegistry.CreateDefault();

        var tools = registry.AsAITools(["text_stats", "Calculator", "calculator"]);

        Assert.Equal(["text_stats", "calculator"], tools.Select(t => t.Name));
        Assert.Throws<ArgumentException>(() => registry.AsAITools(["shell"]));
    }

    [Fact]
    public async Task AsAITools_Invoke_ReturnsValueOrPrefixedError()
    {
        var calculator = (AIFunction)ToolRegistry.CreateDefault().AsAITools(["calculator"])[0];
        var ct = TestContext.Current.CancellationToken;

        var ok = await calculator.InvokeAsync(new AIFunctionArguments { ["expression"] = "6*7" }, ct);
        var failed = await calculator.InvokeAsync(new AIFunctionArguments { ["expression"] = "1/0" }, ct);

        Assert.Equal("42", ok);
        Assert.Equal("error: division by zero at 1", failed);
    }

    [Fact]
    public void AddLabTools_ServiceProvider_ResolvesTheRegistryWithAllTools()
    {
        var services = new ServiceCollection().AddLabTools().AddLabTools();   // twice: registrations are idempotent

        using var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });

        Assert.Equal(["calculator", "current_time", "text_stats"], provider.GetRequiredService<ToolRegistry>().Names);
    }

    [Fact]
    public async Task OllamaClient_RequestWithRegistryTools_CarriesOllamaToolsJson()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var client = CreateClient(fake.BaseAddress);
        var registry = ToolRegistry.CreateDefault();
        var options = new ChatOptions { ModelId = "qwen3:4b", Tools = registry.AsAITools() };

        await client.GetResponseAsync([new(ChatRole.User, "What is 6*7?")], options, ct).WaitAsync(Bound, ct);

        var tools = Assert.Single(fake.ChatRequests).GetProperty("tools");
        Assert.Equal(3, tools.GetArrayLength());
        foreach (var (sent, tool) in tools.EnumerateArray().Zip(registry.All))
        {
            Assert.Equal("function", sent.GetProperty("type").GetString());
            var function = sent.GetProperty("function");
            Assert.Equal(tool.Name, function.GetProperty("name").GetString());
            Assert.Equal(tool.Description, function.GetProperty("description").GetString());
            Assert.True(JsonElement.DeepEquals(tool.ParametersSchema, function.GetProperty("parameters")));
        }
        var calculator = tools[0].GetProperty("function").GetProperty("parameters");
        Assert.Equal("object", calculator.GetProperty("type").GetString());
        Assert.Equal("expression", calculator.GetProperty("required")[0].GetString());
        Assert.Equal("string", calculator.GetProperty("properties").GetProperty("expression").GetProperty("type").GetString());
    }

    [Fact]
    public async Task OllamaClient_ToolCallRoundTrip_InvokesTheToolAndSendsItsResult()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.Chat = (ctx, body) => FakeOllama.WriteLinesAsync(ctx,
        [
            """{"model":"qwen3:4b","created_at":"2025-07-07T20:22:19Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_1","function":{"index":0,"name":"calculator","arguments":{"expression":"(2 + 3) * 4"}}}]},"done":false}""",
            FakeOllama.FinalLine("qwen3:4b"),
        ]);
        var client = CreateClient(fake.BaseAddress);
        var registry = ToolRegistry.CreateDefault();
        var options = new ChatOptions { ModelId = "qwen3:4b", Tools = registry.AsAITools(["calculator"]) };
        List<ChatMessage> messages = [new(ChatRole.User, "What is (2 + 3) * 4?")];

        var response = await client.GetResponseAsync(messages, options, ct).WaitAsync(Bound, ct);
        var call = Assert.Single(response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        var function = options.Tools.OfType<AIFunction>().Single(t => t.Name == call.Name);
        var result = await function.InvokeAsync(new AIFunctionArguments(call.Arguments), ct);
        messages.AddRange(response.Messages);
        messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(call.CallId, result)]));
        await client.GetResponseAsync(messages, options, ct).WaitAsync(Bound, ct);

        Assert.Equal("20", result);
        var second = fake.ChatRequests.Last().GetProperty("messages");
        var toolMessage = second.EnumerateArray().Single(m => m.GetProperty("role").GetString() == "tool");
        Assert.Equal("20", toolMessage.GetProperty("content").GetString());
        Assert.Equal("calculator", toolMessage.GetProperty("tool_name").GetString());
    }
}
