using AgentLab.LabService.Orchestration.Runtime;
using Microsoft.Extensions.AI;

namespace AgentLab.Tests.Orchestration;

public sealed class GraphRunnerTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private static readonly RetryPolicy FastRetry = new(MaxAttempts: 3, InitialDelay: TimeSpan.FromMilliseconds(1));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A node that asks the model once (through the run) and returns the answer.</summary>
    private static ILabNode ModelNode(string name) => new DelegateNode(name, async (state, ctx, ct) =>
    {
        var response = await ctx.ChatClient.GetResponseAsync([new ChatMessage(ChatRole.User, $"{name}: {state.Input}")], cancellationToken: ct);
        return new NodeResult(response.Text);
    });

    private static ILabNode Fixed(string name, string output, string? route = null) =>
        new DelegateNode(name, (_, _, _) => ValueTask.FromResult(new NodeResult(output, route)));

    private static async Task<List<GraphEvent>> CollectAsync(GraphRunner runner, Graph graph, GraphRunOptions? options = null,
        CancellationToken? ct = null)
    {
        var events = new List<GraphEvent>();
        await foreach (var e in runner.RunAsync(graph, GraphState.Initial("task"), options, ct ?? Ct).WithCancellation(Ct))
            events.Add(e);
        return events;
    }

    private static GraphRunResult ResultOf(List<GraphEvent> events) => Assert.IsType<RunCompletedEvent>(events[^1]).Result;

    [Fact]
    public async Task Run_FanOutAndFanIn_JoinRunsOnceAfterAllBranches()
    {
        var seenByJoin = "";
        var graph = new GraphBuilder("fan")
            .AddNode(Fixed("start", "s"))
            .AddNode(Fixed("left", "L"))
            .AddNode(Fixed("right", "R1"))
            .AddNode(Fixed("right2", "R2"))
            .AddJoin(new DelegateNode("join", (state, _, _) =>
            {
                seenByJoin = $"{state.OutputOf("left")}+{state.OutputOf("right2")}";
                return ValueTask.FromResult(new NodeResult(seenByJoin));
            }))
            .AddFanOut("start", "left", "right")
            .AddEdge("left", "join")
            .AddEdge("right", "right2")
            .AddEdge("right2", "join")
            .Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(new FakeChatClient()), graph).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(["start", "left", "right", "right2", "join"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal("L+R2", seenByJoin);
        Assert.Equal("L+R2", result.Output);
        Assert.Equal(1, result.State.RunCount("join"));
    }

    [Fact]
    public async Task Run_FanOut_BranchesRunInParallel()
    {
        var gate = new TaskCompletionSource();
        var arrived = 0;
        ILabNode Branch(string name) => new DelegateNode(name, async (_, _, ct) =>
        {
            // Each branch waits for the other: only parallel execution can finish.
            if (Interlocked.Increment(ref arrived) == 2)
                gate.SetResult();
            await gate.Task.WaitAsync(ct);
            return new NodeResult(name);
        });
        var graph = new GraphBuilder("parallel")
            .AddNode(Fixed("start", "s")).AddNode(Branch("a")).AddNode(Branch("b"))
            .AddFanOut("start", "a", "b")
            .Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(new FakeChatClient()), graph).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal(3, result.Flow.Nodes.Count);
    }

    [Fact]
    public async Task Run_ConditionalEdges_FollowTheRoute()
    {
        var graph = new GraphBuilder("route")
            .AddNode(Fixed("decide", "d", route: "b"))
            .AddNode(Fixed("a", "went a"))
            .AddNode(Fixed("b", "went b"))
            .AddEdge("decide", "a", (r, _) => r.Route == "a", "a")
            .AddEdge("decide", "b", (r, _) => r.Route == "b", "b")
            .Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(new FakeChatClient()), graph).WaitAsync(Bound, Ct));

        Assert.Equal(["decide", "b"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal("went b", result.Output);
        var edge = Assert.Single(result.Flow.Edges);
        Assert.Equal(("decide", "b", "b"), (edge.From, edge.To, edge.Label));
    }

    [Fact]
    public async Task Run_NodeFailsBeforeOutput_RetriedThenSucceeds()
    {
        var chat = new FakeChatClient(FakeReply.Fails(new HttpRequestException("boom")), FakeReply.Text("fine"));
        var graph = new GraphBuilder("retry").AddNode(ModelNode("worker"), FastRetry).Build();

        var events = await CollectAsync(new GraphRunner(chat), graph).WaitAsync(Bound, Ct);

        var result = ResultOf(events);
        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal("fine", result.Output);
        var failed = Assert.Single(events.OfType<NodeFailedEvent>());
        Assert.True(failed.WillRetry);
        Assert.Equal(1, failed.Attempt);
        Assert.Equal([(1, "failed"), (2, "completed")], result.Flow.Nodes.Select(n => (n.Attempt, n.Status)));
        Assert.Equal(2, chat.Calls.Count);
    }

    [Fact]
    public async Task Run_NodeFailsAfterStreamingTokens_NotRetried()
    {
        var chat = new FakeChatClient(FakeReply.Fails(new HttpRequestException("broke mid-stream"), "partial "), FakeReply.Text("never"));
        var graph = new GraphBuilder("noretry").AddNode(ModelNode("worker"), FastRetry).Build();

        var events = await CollectAsync(new GraphRunner(chat), graph).WaitAsync(Bound, Ct);

        var result = ResultOf(events);
        Assert.Equal(StopCodes.NodeFailed, result.StopReason.Code);
        Assert.Equal("worker", result.StopReason.Node);
        Assert.False(Assert.Single(events.OfType<NodeFailedEvent>()).WillRetry);
        Assert.Single(chat.Calls);
        Assert.Equal("partial ", Assert.Single(events.OfType<TokenEvent>()).Text);
    }

    [Fact]
    public async Task Run_ModelCallBudgetSpent_StopsWithBudgetExhausted()
    {
        var chat = new FakeChatClient(FakeReply.Text("1"), FakeReply.Text("2"), FakeReply.Text("3"));
        var graph = new GraphBuilder("calls")
            .AddNode(ModelNode("a")).AddNode(ModelNode("b")).AddNode(ModelNode("c"))
            .AddEdge("a", "b").AddEdge("b", "c")
            .Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(chat), graph,
            new GraphRunOptions { Budget = new RunBudget(MaxModelCalls: 2) }).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.BudgetExhausted, result.StopReason.Code);
        Assert.Equal(BudgetKinds.ModelCalls, result.StopReason.Budget);
        Assert.Equal(2, chat.Calls.Count);
        Assert.Equal(2, result.Metrics.ModelCalls);
    }

    [Fact]
    public async Task Run_TokenBudgetSpent_StopsBetweenSteps()
    {
        var chat = new FakeChatClient(FakeReply.Text("1"), FakeReply.Text("2"));
        var graph = new GraphBuilder("tokens").AddNode(ModelNode("a")).AddNode(ModelNode("b")).AddEdge("a", "b").Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(chat), graph,
            new GraphRunOptions { Budget = new RunBudget(MaxTokens: 15) }).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.BudgetExhausted, result.StopReason.Code);
        Assert.Equal(BudgetKinds.Tokens, result.StopReason.Budget);
        Assert.Equal(["a"], result.Flow.Nodes.Select(n => n.Name));
        Assert.Equal(15, result.Metrics.PromptTokens + result.Metrics.CompletionTokens);
    }

    [Fact]
    public async Task Run_WallTimeBudgetSpent_CancelsTheRunningNode()
    {
        var chat = new FakeChatClient(FakeReply.Hangs());
        var graph = new GraphBuilder("wall").AddNode(ModelNode("slow")).Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(chat), graph,
            new GraphRunOptions { Budget = new RunBudget(MaxWallTime: TimeSpan.FromMilliseconds(50)) }).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.BudgetExhausted, result.StopReason.Code);
        Assert.Equal(BudgetKinds.WallTime, result.StopReason.Budget);
        Assert.Equal(NodeRun.CancelledStatus, Assert.Single(result.Flow.Nodes).Status);
    }

    [Fact]
    public async Task Run_LoopWithoutExit_StopsAtStepLimit()
    {
        var graph = new GraphBuilder("loop").AddNode(Fixed("again", "x")).AddEdge("again", "again").Build();

        var result = ResultOf(await CollectAsync(new GraphRunner(new FakeChatClient()), graph,
            new GraphRunOptions { MaxSteps = 5 }).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.StepLimit, result.StopReason.Code);
        Assert.Equal(5, result.Flow.Nodes.Count);
        Assert.Equal(5, result.Flow.Iterations);
    }

    [Fact]
    public async Task Run_CallerCancels_StopsWithCancelled()
    {
        var chat = new FakeChatClient(FakeReply.Hangs());
        var graph = new GraphBuilder("cancel").AddNode(ModelNode("slow")).Build();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var events = new List<GraphEvent>();

        await foreach (var e in new GraphRunner(chat).RunAsync(graph, GraphState.Initial("t"), null, cts.Token).WithCancellation(Ct))
        {
            events.Add(e);
            if (e is NodeStartedEvent)
                await cts.CancelAsync();
        }

        var result = ResultOf(events);
        Assert.Equal(StopCodes.Cancelled, result.StopReason.Code);
        Assert.Equal(NodeRun.CancelledStatus, Assert.Single(result.Flow.Nodes).Status);
    }

    [Fact]
    public async Task Run_Events_AreOrderedWithGapFreeSeq()
    {
        var chat = new FakeChatClient(FakeReply.Text("a1", "a2"), FakeReply.Text("b1"));
        var graph = new GraphBuilder("events").AddNode(ModelNode("a")).AddNode(ModelNode("b")).AddEdge("a", "b").Build();

        var events = await CollectAsync(new GraphRunner(chat), graph).WaitAsync(Bound, Ct);

        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e.Seq));
        Assert.Equal(
            ["node_started:a", "token:a", "token:a", "node_completed:a", "node_started:b", "token:b", "node_completed:b", "run_completed:"],
            events.Select(e => $"{e.Type}:{e.Node}"));
        var completed = events.OfType<NodeCompletedEvent>().First().Run;
        Assert.Equal("a1a2", completed.Output);
        Assert.Equal(1, completed.Metrics.ModelCalls);
        Assert.Equal((10, 5), (completed.Metrics.PromptTokens, completed.Metrics.CompletionTokens));
        Assert.NotNull(completed.Metrics.TimeToFirstTokenMs);
    }

    [Fact]
    public async Task Run_WithPreviousNodes_RestoresCompletedAndRunsTheRest()
    {
        var chat = new FakeChatClient(FakeReply.Text("b again"));
        var graph = new GraphBuilder("resume").AddNode(ModelNode("a")).AddNode(ModelNode("b")).AddEdge("a", "b").Build();
        var previous = new List<NodeRun>
        {
            new() { Name = "a", Status = NodeRun.CompletedStatus, Output = "a before" },
            new() { Name = "b", Status = NodeRun.FailedStatus },
        };

        var result = ResultOf(await CollectAsync(new GraphRunner(chat), graph,
            new GraphRunOptions { PreviousNodes = previous }).WaitAsync(Bound, Ct));

        Assert.Equal(StopCodes.Completed, result.StopReason.Code);
        Assert.Equal([("a", true), ("b", false)], result.Flow.Nodes.Select(n => (n.Name, n.Restored == true)));
        Assert.Equal("a before", result.State.OutputOf("a"));
        Assert.Single(chat.Calls);
    }
}
