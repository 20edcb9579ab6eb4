using System.Collections.Concurrent;
using System.Text.Json;
using AgentLab.LabService.Orchestration.LabGraph;
using AgentLab.LabService.Orchestration.Runtime;
using Microsoft.Extensions.AI;

namespace AgentLab.Tests.Orchestration;

public sealed class LabGraphTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly PromptLibrary Prompts = new(PromptLibrary.DefaultDirectory);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A fake model that answers per worker (recognised by its system prompt) from that worker's script.</summary>
    private sealed class Team
    {
        public ConcurrentQueue<FakeReply> Analyzer { get; } = new();
        public ConcurrentQueue<FakeReply> Executor { get; } = new();
        public ConcurrentQueue<FakeReply> Validator { get; } = new();
        public FakeChatClient Chat { get; }

        public Team() => Chat = new FakeChatClient(call =>
        {
            var system = call.Messages[0].Text;
            var queue = system.Contains("analyzer", StringComparison.Ordinal) ? Analyzer
                : system.Contains("executor", StringComparison.Ordinal) ? Executor : Validator;
            return queue.TryDequeue(out var reply) ? reply : throw new InvalidOperationException("no reply scripted");
        });

        public IEnumerable<FakeCall> CallsOf(string worker) =>
            Chat.Calls.Where(c => c.Messages[0].Text.Contains(worker, StringComparison.Ordinal));
    }

    private static FakeReply VerdictReply(string verdict, string hint = "") =>
        FakeReply.Text(JsonSerializer.Serialize(new { verdict, reasons = new[] { $"because {verdict}" }, fix_hint = hint }));

    private static async Task<(GraphRunResult Result, List<GraphEvent> Events)> RunAsync(Team team, LabGraphSettings settings,
        IReadOnlyList<AITool>? tools = null, RunBudget? budget = null)
    {
        var (graph, observers) = new LabGraphFactory(Prompts).Build(settings, tools ?? []);
        var events = new List<GraphEvent>();
        var options = new GraphRunOptions { Observers = observers, Budget = budget ?? RunBudget.Unlimited };
        await foreach (var e in new GraphRunner(team.Chat).RunAsync(graph, GraphState.Initial("What is 2+2?"), options, Ct)
                           .WithCancellation(Ct))
            events.Add(e);
        return (Assert.IsType<RunCompletedEvent>(events[^1]).Result, events);
    }

    private static LabGraphSettings Settings(int maxIterations = 2, params string[] agents) =>
        new() { Model = "mistral:7b", MaxIterations = maxIterations, Agents = agents.Length == 0 ? null : agents };

    [Fact]
    public async Task LabGraph_VerdictPass_RunsEachWorkerOnceWithTheExecutorsAnswer()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan: add"));
        team.Executor.Enqueue(FakeReply.Text("4"));
        team.Validator.Enqueue(VerdictReply("pass"));

        var (result, _) = await RunAsync(team, Settings()).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal("4", result.Output);
        Assert.Equal(["analyzer", "executor", "validator"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal(["analyzer.v1", "executor.v1", "validator.v1"], result.Flow.Nodes.Select(n => n.Metrics.PromptVersion));
        Assert.Equal(1, result.Flow.Iterations);
        Assert.Equal("pass", result.Report!["final_verdict"]!.GetValue<string>());
        // The validator's call asks for JSON constrained by the verdict schema.
        var format = Assert.IsType<ChatResponseFormatJson>(team.CallsOf("validator").Single().Options!.ResponseFormat);
        Assert.Equal("verdict", format.Schema!.Value.GetProperty("required")[0].GetString());
        Assert.Contains("plan: add", team.CallsOf("executor").Single().Messages[1].Text);
    }

    [Fact]
    public async Task LabGraph_ReviseTwiceThenPass_ExecutorRunsThreeTimesWithTheHint()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        foreach (var answer in new[] { "5", "3", "4" })
            team.Executor.Enqueue(FakeReply.Text(answer));
        team.Validator.Enqueue(VerdictReply("revise", "check the sum"));
        team.Validator.Enqueue(VerdictReply("revise", "still wrong"));
        team.Validator.Enqueue(VerdictReply("pass"));

        var (result, _) = await RunAsync(team, Settings(maxIterations: 2)).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal("4", result.Output);
        Assert.Equal(3, result.Flow.Iterations);
        Assert.Equal(["analyzer", "executor", "validator", "executor", "validator", "executor", "validator"],
            result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal(["revise", "revise", "pass"], result.Flow.Edges.Where(e => e.From == "validator").Select(e => e.Label));
        var secondExecutorPrompt = team.CallsOf("executor").ElementAt(1).Messages[1].Text;
        Assert.Contains("check the sum", secondExecutorPrompt);
        Assert.Contains("5", secondExecutorPrompt);
    }

    [Fact]
    public async Task LabGraph_MaxIterationsHit_EndsWithTheLastAnswer()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        team.Executor.Enqueue(FakeReply.Text("first"));
        team.Executor.Enqueue(FakeReply.Text("second"));
        team.Validator.Enqueue(VerdictReply("revise", "more"));
        team.Validator.Enqueue(VerdictReply("revise", "more again"));

        var (result, _) = await RunAsync(team, Settings(maxIterations: 1)).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal("second", result.Output);
        Assert.Equal(2, result.Flow.Iterations);
        Assert.Equal("max_iterations", result.Flow.Edges[^1].Label);
        Assert.True(result.Report!["max_iterations_reached"]!.GetValue<bool>());
    }

    [Fact]
    public async Task LabGraph_VerdictFail_StopsAsRejected()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        team.Executor.Enqueue(FakeReply.Text("answer"));
        team.Validator.Enqueue(VerdictReply("fail"));

        var (result, _) = await RunAsync(team, Settings()).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Rejected, result.StopReason.Code);
        Assert.Equal("validator", result.StopReason.Node);
    }

    [Fact]
    public async Task LabGraph_MalformedVerdictTwice_StopsWithInvalidVerdict()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        team.Executor.Enqueue(FakeReply.Text("answer"));
        team.Validator.Enqueue(FakeReply.Text("looks good to me"));
        team.Validator.Enqueue(FakeReply.Text("""{"verdict":"maybe"}"""));

        var (result, events) = await RunAsync(team, Settings()).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.InvalidVerdict, result.StopReason.Code);
        Assert.Equal(2, team.CallsOf("validator").Count());
        Assert.Contains(events.OfType<LogEvent>(), e => e.Node == "validator" && e.Message.Contains("asking once more"));
    }

    [Fact]
    public async Task LabGraph_MalformedVerdictOnce_AsksAgainAndContinues()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        team.Executor.Enqueue(FakeReply.Text("answer"));
        team.Validator.Enqueue(FakeReply.Text("not json"));
        team.Validator.Enqueue(VerdictReply("pass"));

        var (result, _) = await RunAsync(team, Settings()).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        var retry = team.CallsOf("validator").ElementAt(1).Messages;
        Assert.Equal(4, retry.Count);
        Assert.Contains("not the JSON object", retry[^1].Text);
    }

    [Fact]
    public async Task LabGraph_WithoutValidator_AnalyzerThenExecutorThenDone()
    {
        var team = new Team();
        team.Analyzer.Enqueue(FakeReply.Text("plan"));
        team.Executor.Enqueue(FakeReply.Text("4"));

        var (result, _) = await RunAsync(team, Settings(2, "analyzer", "executor")).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(["analyzer", "executor"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Null(result.Report);
    }

    [Fact]
    public void LabGraph_UnknownAgent_ThrowsUnknownAgent()
    {
        var ex = Assert.Throws<LabGraphRequestException>(() => LabGraphFactory.ResolveAgents(["analyzer", "planner"]));

        Assert.Equal("unknown_agent", ex.Code);
        Assert.Contains("planner", ex.Message);
    }

    [Fact]
    public async Task LabGraph_ToolCall_InvokesTheFunctionAndSendsTheResultBack()
    {
        var team = new Team();
        team.Executor.Enqueue(FakeReply.CallsTool("add", new() { ["a"] = 2, ["b"] = 2 }));
        team.Executor.Enqueue(FakeReply.Text("The sum is 4"));
        var invoked = 0;
        var add = AIFunctionFactory.Create((int a, int b) =>
        {
            Interlocked.Increment(ref invoked);
            return a + b;
        }, "add", "Adds two integers");

        var (result, _) = await RunAsync(team, Settings(2, "executor"), [add]).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal("The sum is 4", result.Output);
        Assert.Equal(1, invoked);
        Assert.Equal(1, result.Metrics.ToolCalls);
        var second = team.CallsOf("executor").ElementAt(1);
        var toolResult = second.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal("call-1", toolResult.CallId);
        Assert.Equal("4", toolResult.Result?.ToString());
        Assert.Same(add, Assert.Single(second.Options!.Tools!));
    }

    [Fact]
    public async Task LabGraph_TokenBudgetOverrun_MonitorStopsNamingTheNode()
    {
        var team = new Team();
        team.Analyzer.Enqueue(new FakeReply { Chunks = ["long plan"], PromptTokens = 50, CompletionTokens = 60 });

        var (result, events) = await RunAsync(team, Settings(), budget: new RunBudget(MaxTokens: 100)).WaitAsync(Bound, Ct);

        Assert.Equal(StopCodes.BudgetExhausted, result.StopReason.Code);
        Assert.Equal(BudgetKinds.Tokens, result.StopReason.Budget);
        Assert.Equal("analyzer", result.StopReason.Node);
        Assert.Contains("monitor", result.StopReason.Message);
        Assert.Contains(events.OfType<LogEvent>(), e => e.Message.StartsWith("monitor: analyzer", StringComparison.Ordinal));
        Assert.Equal("budget_exhausted", result.Report!["stop_reason"]!.GetValue<string>());
    }
}
