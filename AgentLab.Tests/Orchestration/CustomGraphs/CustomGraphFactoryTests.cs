using System.Collections.Concurrent;
using System.Text.Json;
using AgentLab.LabService.Orchestration;
using AgentLab.LabService.Orchestration.Definitions;
using AgentLab.LabService.Orchestration.LabGraph;
using AgentLab.LabService.Orchestration.Runtime;
using AgentLab.LabService.Orchestration.Tools;
using Microsoft.Extensions.AI;

namespace AgentLab.Tests.Orchestration.CustomGraphs;

/// <summary>Custom graphs compiled by <see cref="CustomGraphFactory"/> and run on a scripted fake model.</summary>
public sealed class CustomGraphFactoryTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly PromptLibrary Prompts = new(PromptLibrary.DefaultDirectory);
    private const string WriterRole = "You are the writer. Write the text the task asks for.";
    private const string CriticRole = "You are the critic. Judge the writer's text.";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Answers each node (recognised by its role, the system prompt) from that node's script.</summary>
    private sealed class Team
    {
        public ConcurrentQueue<FakeReply> Writer { get; } = new();
        public ConcurrentQueue<FakeReply> Critic { get; } = new();
        public FakeChatClient Chat { get; }

        public Team() => Chat = new FakeChatClient(call =>
        {
            var queue = call.Messages[0].Text == WriterRole ? Writer : Critic;
            return queue.TryDequeue(out var reply) ? reply : throw new InvalidOperationException("no reply scripted");
        });

        public List<FakeCall> CallsOf(string role) => [.. Chat.Calls.Where(c => c.Messages[0].Text == role)];
    }

    private static FakeReply VerdictReply(string verdict, string hint = "") =>
        FakeReply.Text(JsonSerializer.Serialize(new { verdict, reasons = new[] { $"because {verdict}" }, fix_hint = hint }));

    /// <summary>writer → critic; revise → writer, pass → $end; fail has no route.</summary>
    private static GraphDefinition ReviewLoop(int? maxSteps = null, string? criticModel = null, List<string>? writerTools = null) => new()
    {
        Name = "review-loop",
        Entry = "writer",
        MaxSteps = maxSteps,
        Nodes =
        [
            new GraphNodeDefinition { Name = "writer", Role = WriterRole, Tools = writerTools },
            new GraphNodeDefinition { Name = "critic", Role = CriticRole, Output = GraphOutputs.Verdict, Model = criticModel },
        ],
        Edges =
        [
            new GraphEdgeDefinition { From = "writer", To = "critic" },
            new GraphEdgeDefinition { From = "critic", To = "writer", When = GraphVerdicts.Revise },
            new GraphEdgeDefinition { From = "critic", To = GraphDefinition.End, When = GraphVerdicts.Pass },
        ],
    };

    private static async Task<GraphRunResult> RunAsync(Team team, GraphDefinition definition,
        IReadOnlyDictionary<string, string>? models = null, ILabToolProvider? tools = null, List<NodeRun>? previous = null)
    {
        Assert.Empty(GraphValidator.Validate(definition));
        var (graph, observers) = new CustomGraphFactory(Prompts).Build(definition, new LabGraphSettings { Model = "mistral:7b" },
            models ?? new Dictionary<string, string>(), tools ?? new NoLabTools());
        var options = new GraphRunOptions { Observers = observers, MaxSteps = definition.EffectiveMaxSteps, PreviousNodes = previous };
        return await new GraphRunner(team.Chat).RunToEndAsync(graph, GraphState.Initial("Write a haiku about rain."), options, Ct)
            .WaitAsync(Bound, Ct);
    }

    [Fact]
    public async Task CustomGraph_ReviseThenPass_LoopsBackToTheWriterWithTheCritique()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("rain falls"));
        team.Writer.Enqueue(FakeReply.Text("soft rain on the roof"));
        team.Critic.Enqueue(VerdictReply("revise", "five-seven-five"));
        team.Critic.Enqueue(VerdictReply("pass"));

        var result = await RunAsync(team, ReviewLoop());

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(["writer", "critic", "writer", "critic"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal(["revise", "pass"], result.Flow.Nodes.Where(n => n.Name == "critic").Select(n => n.Route));
        Assert.Equal(["writer→critic", "critic→writer", "writer→critic", "critic→__end__"],
            result.Flow.Edges.Select(e => $"{e.From}→{e.To}"));
        // The answer is the writer's text, not the critic's verdict JSON.
        Assert.Equal("soft rain on the roof", CustomGraphFactory.SelectOutput(result));
        // Roles are the system prompts; the user message carries the task and the previous node's output.
        var rewrite = team.CallsOf(WriterRole)[1];
        Assert.Contains("Write a haiku about rain.", rewrite.Messages[1].Text, StringComparison.Ordinal);
        Assert.Contains("five-seven-five", rewrite.Messages[1].Text, StringComparison.Ordinal);
        Assert.Contains("rain falls", team.CallsOf(CriticRole)[0].Messages[1].Text, StringComparison.Ordinal);
        // The critic answers under the lab validator's verdict schema; the writer in free text.
        Assert.All(team.CallsOf(CriticRole), c => Assert.IsType<ChatResponseFormatJson>(c.Options!.ResponseFormat));
        Assert.All(team.CallsOf(WriterRole), c => Assert.Null(c.Options!.ResponseFormat));
    }

    [Fact]
    public async Task CustomGraph_VerdictWithoutAnEdge_StopsWithNoRoute()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("drizzle"));
        team.Critic.Enqueue(VerdictReply("fail"));

        var result = await RunAsync(team, ReviewLoop());

        Assert.Equal(CustomGraphFactory.NoRouteCode, result.StopReason.Code);
        Assert.Equal("critic", result.StopReason.Node);
        Assert.Contains("'fail'", result.StopReason.Message, StringComparison.Ordinal);
        // The critic completed and its verdict is kept; nothing ran after it.
        Assert.Equal(["writer", "critic"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal(NodeRun.CompletedStatus, result.Flow.Nodes[^1].Status);
        Assert.Equal("fail", result.Flow.Nodes[^1].Route);
    }

    [Fact]
    public async Task CustomGraph_EdgeWithoutWhen_RoutesEveryUncoveredVerdict()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("drizzle"));
        team.Critic.Enqueue(VerdictReply("fail"));
        var definition = ReviewLoop();
        definition.Edges!.Add(new GraphEdgeDefinition { From = "critic", To = GraphDefinition.End });

        var result = await RunAsync(team, definition);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(["writer→critic", "critic→__end__"], result.Flow.Edges.Select(e => $"{e.From}→{e.To}"));
    }

    [Fact]
    public async Task CustomGraph_EndlessRevisions_StopAtTheGraphsMaxSteps()
    {
        var team = new Team();
        for (var i = 0; i < 5; i++)
        {
            team.Writer.Enqueue(FakeReply.Text($"draft {i}"));
            team.Critic.Enqueue(VerdictReply("revise"));
        }

        var result = await RunAsync(team, ReviewLoop(maxSteps: 5));

        Assert.Equal(StopCodes.StepLimit, result.StopReason.Code);
        Assert.Equal(5, result.Flow.Nodes.Count);
        Assert.Equal("draft 2", CustomGraphFactory.SelectOutput(result));
    }

    [Fact]
    public async Task CustomGraph_NodeModel_IsResolvedAndOthersUseTheRequestsModel()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("rain"));
        team.Critic.Enqueue(VerdictReply("pass"));

        await RunAsync(team, ReviewLoop(criticModel: "judge"), new Dictionary<string, string> { ["judge"] = "qwen2.5:7b" });

        Assert.Equal("mistral:7b", team.CallsOf(WriterRole).Single().Options!.ModelId);
        Assert.Equal("qwen2.5:7b", team.CallsOf(CriticRole).Single().Options!.ModelId);
    }

    [Fact]
    public async Task CustomGraph_MalformedVerdictTwice_StopsWithInvalidVerdict()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("rain"));
        team.Critic.Enqueue(FakeReply.Text("looks good to me"));
        team.Critic.Enqueue(FakeReply.Text("{\"verdict\": \"great\"}"));

        var result = await RunAsync(team, ReviewLoop());

        Assert.Equal(StopCodes.InvalidVerdict, result.StopReason.Code);
        Assert.Equal("critic", result.StopReason.Node);
        Assert.Equal(2, team.CallsOf(CriticRole).Count);
    }

    [Fact]
    public async Task CustomGraph_NodeTools_AreOfferedToThatNodeAndCalled()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.CallsTool("calculator", new() { ["expression"] = "5+7+5" }));
        team.Writer.Enqueue(FakeReply.Text("17 syllables"));
        team.Critic.Enqueue(VerdictReply("pass"));
        var tools = new RegistryToolProvider(new ToolRegistry([new CalculatorTool()]));

        var result = await RunAsync(team, ReviewLoop(writerTools: ["calculator"]), tools: tools);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(1, result.Flow.Nodes[0].Metrics.ToolCalls);
        var toolResult = team.CallsOf(WriterRole)[1].Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal("17", toolResult.Result?.ToString());
        Assert.Null(team.CallsOf(CriticRole).Single().Options!.Tools);
    }

    [Fact]
    public void CustomGraph_UnknownNodeTool_Throws()
    {
        Action act = () => new CustomGraphFactory(Prompts).Build(ReviewLoop(writerTools: ["teleport"]),
            new LabGraphSettings { Model = "mistral:7b" }, new Dictionary<string, string>(), new NoLabTools());

        var ex = Assert.Throws<UnknownToolException>(act);

        Assert.Equal(["teleport"], ex.Unknown);
    }

    [Fact]
    public async Task CustomGraph_PreviousNodes_RestoresCompletedNodesAndTheirVerdicts()
    {
        var team = new Team();
        team.Writer.Enqueue(FakeReply.Text("second draft"));
        team.Critic.Enqueue(VerdictReply("pass"));
        List<NodeRun> previous =
        [
            new() { Name = "writer", Status = NodeRun.CompletedStatus, Attempt = 1, Output = "first draft" },
            new() { Name = "critic", Status = NodeRun.CompletedStatus, Attempt = 1, Output = "{}", Route = "revise" },
        ];

        var result = await RunAsync(team, ReviewLoop(), previous: previous);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal([true, true, false, false], result.Flow.Nodes.Select(n => n.Restored == true));
        Assert.Equal("second draft", CustomGraphFactory.SelectOutput(result));
        Assert.Single(team.CallsOf(WriterRole));
    }
}
