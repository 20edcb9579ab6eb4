namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>
/// An edge from one node to another (or to <see cref="Graph.End"/>). A conditional edge is taken only when its
/// predicate holds for the source node's result and the state after it; every matching edge is taken (fan-out).
/// </summary>
public sealed record GraphEdge(string From, string To, string? Label = null, Func<NodeResult, GraphState, bool>? Condition = null)
{
    public bool IsConditional => Condition is not null;
}

/// <summary>Retry with exponential backoff, only for a node that has not produced any output yet.</summary>
public sealed record RetryPolicy(int MaxAttempts = 1, TimeSpan? InitialDelay = null, double Multiplier = 2, TimeSpan? MaxDelay = null,
    Func<Exception, bool>? RetryOn = null)
{
    public static RetryPolicy None { get; } = new();

    public TimeSpan DelayBefore(int nextAttempt)
    {
        var initial = InitialDelay ?? TimeSpan.FromMilliseconds(200);
        var max = MaxDelay ?? TimeSpan.FromSeconds(10);
        var delay = initial.TotalMilliseconds * Math.Pow(Multiplier, Math.Max(0, nextAttempt - 2));
        return TimeSpan.FromMilliseconds(Math.Min(delay, max.TotalMilliseconds));
    }
}

/// <summary>A node as registered in a graph: the node itself, its retry policy and whether it joins (fan-in).</summary>
public sealed record GraphNode(ILabNode Node, RetryPolicy Retry, bool IsJoin)
{
    public string Name => Node.Name;
}

/// <summary>
/// An immutable graph of named nodes and edges, built with <see cref="GraphBuilder"/>. A node with no edge taken
/// ends its branch; the run ends when no branch is left (or at <see cref="End"/> / <see cref="Reject"/>).
/// </summary>
public sealed class Graph
{
    /// <summary>Edge target that ends the run successfully.</summary>
    public const string End = "__end__";

    /// <summary>Edge target that ends the run as failed with stop reason <c>rejected</c> (e.g. a validator's <c>fail</c>).</summary>
    public const string Reject = "__reject__";

    internal Graph(string name, string entry, IReadOnlyDictionary<string, GraphNode> nodes, IReadOnlyList<GraphEdge> edges,
        string? outputNode, string? iterationNode)
    {
        Name = name;
        Entry = entry;
        Nodes = nodes;
        Edges = edges;
        OutputNode = outputNode;
        IterationNode = iterationNode;
        Outgoing = edges.GroupBy(e => e.From, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<GraphEdge>)[.. g], StringComparer.Ordinal);
        JoinInputs = nodes.Values.Where(n => n.IsJoin).ToDictionary(n => n.Name,
            n => (IReadOnlySet<string>)edges.Where(e => e.To == n.Name).Select(e => e.From).ToHashSet(StringComparer.Ordinal),
            StringComparer.Ordinal);
    }

    public string Name { get; }
    public string Entry { get; }
    public IReadOnlyDictionary<string, GraphNode> Nodes { get; }
    public IReadOnlyList<GraphEdge> Edges { get; }

    /// <summary>Whose output is the run's output; null: the last node that completed.</summary>
    public string? OutputNode { get; }

    /// <summary>The node whose completions count as the run's iterations; null: the most-run node.</summary>
    public string? IterationNode { get; }

    internal IReadOnlyDictionary<string, IReadOnlyList<GraphEdge>> Outgoing { get; }
    internal IReadOnlyDictionary<string, IReadOnlySet<string>> JoinInputs { get; }
}

/// <summary>Builds a <see cref="Graph"/> and checks it: every edge names known nodes, the entry exists.</summary>
public sealed class GraphBuilder(string name)
{
    private readonly Dictionary<string, GraphNode> _nodes = new(StringComparer.Ordinal);
    private readonly List<GraphEdge> _edges = [];
    private string? _entry;
    private string? _output;
    private string? _iteration;

    public GraphBuilder AddNode(ILabNode node, RetryPolicy? retry = null)
    {
        Add(node, retry, isJoin: false);
        return this;
    }

    /// <summary>A fan-in node: it runs once all the nodes with an edge to it have delivered since its last run.</summary>
    public GraphBuilder AddJoin(ILabNode node, RetryPolicy? retry = null)
    {
        Add(node, retry, isJoin: true);
        return this;
    }

    public GraphBuilder AddEdge(string from, string to, string? label = null)
    {
        _edges.Add(new GraphEdge(from, to, label));
        return this;
    }

    public GraphBuilder AddEdge(string from, string to, Func<NodeResult, GraphState, bool> condition, string? label = null)
    {
        _edges.Add(new GraphEdge(from, to, label, condition));
        return this;
    }

    /// <summary>Edges to every target at once: they all run in the same step, in parallel.</summary>
    public GraphBuilder AddFanOut(string from, params string[] targets)
    {
        foreach (var target in targets)
            AddEdge(from, target);
        return this;
    }

    public GraphBuilder WithEntry(string node)
    {
        _entry = node;
        return this;
    }

    public GraphBuilder WithOutput(string node)
    {
        _output = node;
        return this;
    }

    public GraphBuilder WithIterations(string node)
    {
        _iteration = node;
        return this;
    }

    public Graph Build()
    {
        var entry = _entry ?? _nodes.Keys.FirstOrDefault() ?? throw new InvalidOperationException($"Graph '{name}' has no nodes.");
        if (!_nodes.ContainsKey(entry))
            throw new InvalidOperationException($"Graph '{name}': the entry node '{entry}' is not a node of the graph.");
        foreach (var edge in _edges)
        {
            if (!_nodes.ContainsKey(edge.From))
                throw new InvalidOperationException($"Graph '{name}': edge {edge.From} → {edge.To} starts at an unknown node.");
            if (edge.To is not (Graph.End or Graph.Reject) && !_nodes.ContainsKey(edge.To))
                throw new InvalidOperationException($"Graph '{name}': edge {edge.From} → {edge.To} ends at an unknown node.");
        }
        foreach (var known in new[] { _output, _iteration })
        {
            if (known is not null && !_nodes.ContainsKey(known))
                throw new InvalidOperationException($"Graph '{name}': '{known}' is not a node of the graph.");
        }
        return new Graph(name, entry, new Dictionary<string, GraphNode>(_nodes, StringComparer.Ordinal), [.. _edges], _output, _iteration);
    }

    private void Add(ILabNode node, RetryPolicy? retry, bool isJoin)
    {
        if (node.Name is Graph.End or Graph.Reject || string.IsNullOrWhiteSpace(node.Name))
            throw new ArgumentException($"'{node.Name}' cannot be a node name.", nameof(node));
        if (!_nodes.TryAdd(node.Name, new GraphNode(node, retry ?? RetryPolicy.None, isJoin)))
            throw new InvalidOperationException($"Graph '{name}' already has a node named '{node.Name}'.");
    }
}
