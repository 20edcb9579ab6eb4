using AgentLab.LabService;
using AgentLab.LabService.Models;
using AgentLab.LabService.Ollama;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace AgentLab.Tests.LabService;

public sealed class ModelResolutionTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);
    private static readonly IReadOnlyDictionary<string, string> Aliases = new LabOptions().Aliases;

    [Theory]
    [InlineData("mistral7b", "mistral:7b")]
    [InlineData("MISTRAL7B", "mistral:7b")]
    [InlineData("llama3", "llama3.2:latest")]
    [InlineData("llama3.2", "llama3.2:latest")]
    [InlineData("qwen3:4b", "qwen3:4b")]
    [InlineData(" phi3 ", "phi3:mini")]
    public void Resolve_NameOrAlias_GivesOllamaTag(string name, string expected)
    {
        var resolved = ModelAliases.Resolve(name, Aliases);

        Assert.Equal(expected, resolved);
    }

    [Fact]
    public void CloseMatches_Typo_SuggestsAliasFirstWithItsTag()
    {
        string[] tags = ["mistral:7b", "llama3.2:latest", "qwen3:4b"];

        var matches = ModelAliases.CloseMatches("mistrl7b", tags, Aliases);

        Assert.Equal(new ModelMatch("mistral7b", "mistral:7b"), matches[0]);
        Assert.True(matches.Count <= 3);
        Assert.Equal("mistral7b (mistral:7b)", matches[0].ToString());
    }

    [Fact]
    public void CloseMatches_UnrelatedName_SuggestsNothing()
    {
        var matches = ModelAliases.CloseMatches("zzzzzzzzzzzz", ["mistral:7b", "qwen3:4b"], Aliases);

        Assert.Empty(matches);
    }

    [Fact]
    public void CloseMatches_AliasWhoseTargetIsMissing_IsNotSuggested()
    {
        var matches = ModelAliases.CloseMatches("phi", ["mistral:7b"], Aliases);

        Assert.DoesNotContain(matches, m => m.Name == "phi3");
    }

    private static ModelManager CreateManager(Uri endpoint, LabOptions? lab = null)
    {
        lab ??= new LabOptions();
        var http = new HttpClient { BaseAddress = endpoint, Timeout = Timeout.InfiniteTimeSpan };
        var client = new OllamaClient(http, Options.Create(new OllamaOptions()), Options.Create(lab), NullLogger<OllamaClient>.Instance);
        return new ModelManager(client, Options.Create(lab), TimeProvider.System, NullLogger<ModelManager>.Instance);
    }

    [Fact]
    public async Task ResolveAsync_AliasOfAvailableModel_ReturnsMergedModel()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var manager = CreateManager(fake.BaseAddress);

        var model = await manager.ResolveAsync("mistral7b", ct).WaitAsync(Bound, ct);

        Assert.Equal("mistral:7b", model.Name);
        Assert.Contains("mistral7b", model.Aliases);
        Assert.True(model.Loaded);
        Assert.Equal(32768, model.ContextLength);
        Assert.Contains("tools", model.Capabilities);
    }

    [Fact]
    public async Task ResolveAsync_ConfiguredAlias_OverridesAndAdds()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var lab = new LabOptions();
        lab.Aliases["mymodel"] = "qwen3:4b";
        var manager = CreateManager(fake.BaseAddress, lab);

        var model = await manager.ResolveAsync("mymodel", ct).WaitAsync(Bound, ct);

        Assert.Equal("qwen3:4b", model.Name);
    }

    [Fact]
    public async Task ResolveAsync_UnknownModel_ThrowsWithCloseMatches()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var manager = CreateManager(fake.BaseAddress);

        var ex = await Assert.ThrowsAsync<ModelNotFoundException>(() => manager.ResolveAsync("mistrl7b", ct)).WaitAsync(Bound, ct);

        Assert.Equal("mistral7b", ex.CloseMatches[0].Name);
        Assert.Equal("Model 'mistrl7b' is not available on the model server. Did you mean: mistral7b (mistral:7b), mistral:7b? See GET /models/.",
            ex.Message);
    }

    [Fact]
    public async Task GetSnapshotAsync_ConcurrentCallers_ShareOneRefresh()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        var manager = CreateManager(fake.BaseAddress);

        var snapshots = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => manager.GetSnapshotAsync(ct))).WaitAsync(Bound, ct);

        Assert.Equal(1, fake.TagsCalls);
        Assert.All(snapshots, s => Assert.Same(snapshots[0], s));
    }

    [Fact]
    public async Task GetServerAsync_SimulatorHeader_ReportsSimulatorKind()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var fake = await FakeOllama.StartAsync(ct);
        fake.IsSimulator = true;
        var manager = CreateManager(fake.BaseAddress);

        var server = await manager.GetServerAsync(ct).WaitAsync(Bound, ct);

        Assert.Equal(ModelServerInfo.SimulatorKind, server.Kind);
    }
}
