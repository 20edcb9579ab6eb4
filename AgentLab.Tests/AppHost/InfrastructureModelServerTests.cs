using AgentLab.AppHost.Infrastructure;
using AgentLab.ModelSimulator;
using AgentLab.Tests.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using static AgentLab.Tests.AppHost.InfrastructureTestKit;

namespace AgentLab.Tests.AppHost;

/// <summary>Which model server the AppHost uses, probed against real sockets on free ports.</summary>
public sealed class InfrastructureModelServerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The probe limit for servers that do answer: a fresh server's first answer pays its JIT, which a loaded 2-core
    /// CI machine can stretch past the selector's default 1 s.
    /// </summary>
    private static readonly TimeSpan AnsweringProbe = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("Endpoint=http://gpu-box:11434", "http://gpu-box:11434/")]
    [InlineData("http://127.0.0.1:9/ollama", "http://127.0.0.1:9/ollama/")]
    public async Task Select_ConnectionStringConfigured_UsesItWithoutProbing(string configured, string expected)
    {
        var choice = await ModelServerSelector.SelectAsync(configured, new Uri($"http://127.0.0.1:{FreePort()}/"), ct: Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.External, choice.Kind);
        Assert.Equal(new Uri(expected), choice.Endpoint);
    }

    [Fact]
    public async Task Select_ConnectionStringWithoutEndpoint_ThrowsSayingTheForm()
    {
        var error = await Assert.ThrowsAsync<InfrastructureException>(() => ModelServerSelector.SelectAsync("Host=x;Port=1", ct: Ct));

        Assert.Contains("Endpoint=http://host:11434", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Select_NothingListening_ChoosesTheSimulatorLoudly()
    {
        var choice = await ModelServerSelector.SelectAsync(null, new Uri($"http://127.0.0.1:{FreePort()}/"), ct: Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.Simulator, choice.Kind);
        Assert.True(choice.IsSimulator);
        Assert.Null(choice.Endpoint);
        Assert.StartsWith("SIMULATOR", choice.Reason, StringComparison.Ordinal);
        Assert.Contains("nothing listens", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Select_OllamaAnswers_UsesIt()
    {
        await using var ollama = await TestHost.StartAsync(app =>
        {
            app.MapGet("/", () => "Ollama is running");
            app.MapGet("/api/version", () => TypedResults.Json(new { version = "0.12.6" }));
        }, defaults: false).WaitAsync(Bound, Ct);

        var choice = await ModelServerSelector.SelectAsync(null, ollama.Address, AnsweringProbe, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.External, choice.Kind);
        Assert.Equal(ollama.Address, choice.Endpoint);
        Assert.Equal($"Endpoint={ollama.Address.AbsoluteUri.TrimEnd('/')}", ModelServerChoice.ConnectionStringFor(choice.Endpoint!));
    }

    [Fact]
    public async Task Select_OurSimulatorAlreadyListening_IsNotTakenForOllama()
    {
        await using var simulator = await SimulatorHost.StartAsync(new SimulatorOptions(), Ct).WaitAsync(Bound, Ct);

        var choice = await ModelServerSelector.SelectAsync(null, simulator.BaseAddress, AnsweringProbe, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.Simulator, choice.Kind);
        Assert.Contains("AgentLab simulator answers there", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Select_SomethingElseOnThePort_ChoosesTheSimulator()
    {
        await using var other = await TestHost.StartAsync(app => app.MapGet("/", () => "a web app"), defaults: false).WaitAsync(Bound, Ct);

        var choice = await ModelServerSelector.SelectAsync(null, other.Address, AnsweringProbe, Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.Simulator, choice.Kind);
        Assert.Contains("not like Ollama", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Select_ServerThatNeverAnswers_GivesUpWithinTheBound()
    {
        await using var silent = await TestHost.StartAsync(app => app.MapGet("/", async (HttpContext ctx) =>
        {
            await Task.Delay(Timeout.Infinite, ctx.RequestAborted);
        }), defaults: false).WaitAsync(Bound, Ct);

        var choice = await ModelServerSelector.SelectAsync(null, silent.Address, TimeSpan.FromMilliseconds(300), Ct).WaitAsync(Bound, Ct);

        Assert.Equal(ModelServerKind.Simulator, choice.Kind);
        Assert.Contains("no answer within", choice.Reason, StringComparison.Ordinal);
    }
}
