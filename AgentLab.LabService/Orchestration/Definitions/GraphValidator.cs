using System.Text.RegularExpressions;

namespace AgentLab.LabService.Orchestration.Definitions;

/// <summary>
/// Decides whether a <see cref="GraphDefinition"/> can run, and says why not: every error names a JSON path
/// (<c>edges[2].to</c>) and what to change. Pure logic: no model server, no clock.
/// </summary>
/// <remarks>
/// Two phases. The first checks fields and references (names, entry, edges, routing rules); the graph is only
/// analysed (reachability, cycles without an exit, a path to <c>$end</c>) when it is free of those errors, so one
/// misspelt name yields one error, not a cascade.
/// </remarks>
public static partial class GraphValidator
{
    public const int MaxNodes = 20;
    public const int MaxEdges = 100;
    public const int MaxRoleLength = 8_000;
    public const int MaxDescriptionLength = 1_000;
    public const int MaxModelLength = 200;
    public const int MaxToolsPerNode = 10;
    public const int MinSteps = 1;
    public const int MaxSteps = 100;

    /// <summary>Graph, node and tool names: lower case, starting with a letter, at most 40 characters.</summary>
    public const string NamePatternText = "^[a-z][a-z0-9_-]{0,39}$";

    [GeneratedRegex(NamePatternText, RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>True when <paramref name="name"/> is a valid graph or node name.</summary>
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>
    /// Every reason <paramref name="graph"/> cannot run, in document order; empty when it is valid.
    /// <paramref name="knownTools"/>, when given, is the set of tool names a node may list (otherwise only their form is checked).
    /// </summary>
    public static IReadOnlyList<GraphError> Validate(GraphDefinition? graph, IReadOnlyCollection<string>? knownTools = null)
    {
        if (graph is null)
            return [new("$", "The body must be a graph object: {\"name\": ..., \"entry\": ..., \"nodes\": [...], \"edges\": [...]}.")];

        var errors = new List<GraphError>();
        CheckHeader(graph, errors);
        var nodes = CheckNodes(graph, knownTools, errors);
        CheckEntry(graph, nodes, errors);
        var outgoing = CheckEdges(graph, nodes, errors);
        if (errors.Count > 0)
            return errors;

        Analyse(graph, nodes, outgoing, errors);
        return errors;
    }

    private static void CheckHeader(GraphDefinition graph, List<GraphError> errors)
    {
        if (string.IsNullOrEmpty(graph.Name))
            errors.Add(new("name", "'name' is required: the name the graph is registered and run by, e.g. \"review-loop\"."));
        else if (!IsValidName(graph.Name))
            errors.Add(new("name", $"'{Shorten(graph.Name)}' is not a valid name: use lower-case letters, digits, '-' and '_', starting with a letter, at most 40 characters."));

        if (graph.Description is { } description)
        {
            if (description.Length > MaxDescriptionLength)
                errors.Add(new("description", $"'description' is {description.Length} characters; the limit is {MaxDescriptionLength}."));
            else if (Unstorable(description))
                errors.Add(new("description", $"'description' {UnstorableText}"));
        }

        if (graph.MaxSteps is { } steps && (steps < MinSteps || steps > MaxSteps))
            errors.Add(new("max_steps", $"'max_steps' is {steps}; it must be between {MinSteps} and {MaxSteps} (node runs per run)."));
    }

    /// <summary>Checks each node; returns the valid, unique names with their index (declaration order).</summary>
    private static Dictionary<string, int> CheckNodes(GraphDefinition graph, IReadOnlyCollection<string>? knownTools, List<GraphError> errors)
    {
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        if (graph.Nodes is not { Count: > 0 } nodes)
        {
            errors.Add(new("nodes", "'nodes' is required and must hold at least one node: {\"name\": ..., \"role\": ..., \"model\": ...}."));
            return names;
        }
        if (nodes.Count > MaxNodes)
        {
            // The nodes are still checked one by one: the count is not the only thing to fix.
            errors.Add(new("nodes", $"The graph has {nodes.Count} nodes; the limit is {MaxNodes}."));
        }

        for (var i = 0; i < nodes.Count; i++)
        {
            var path = $"nodes[{i}]";
            if (nodes[i] is not { } node)
            {
                errors.Add(new(path, "A node must be an object, not null."));
                continue;
            }

            if (string.IsNullOrEmpty(node.Name))
                errors.Add(new($"{path}.name", "'name' is required."));
            else if (!IsValidName(node.Name))
                errors.Add(new($"{path}.name", $"'{Shorten(node.Name)}' is not a valid node name: use lower-case letters, digits, '-' and '_', starting with a letter, at most 40 characters."));
            else if (names.TryGetValue(node.Name, out var first))
                errors.Add(new($"{path}.name", $"'{node.Name}' is already the name of nodes[{first}]; node names must be unique."));
            else
                names[node.Name] = i;

            if (string.IsNullOrWhiteSpace(node.Role))
                errors.Add(new($"{path}.role", "'role' is required: the node's instructions (its system prompt)."));
            else if (node.Role.Length > MaxRoleLength)
                errors.Add(new($"{path}.role", $"'role' is {node.Role.Length} characters; the limit is {MaxRoleLength}."));
            else if (Unstorable(node.Role))
                errors.Add(new($"{path}.role", $"'role' {UnstorableText}"));

            if (node.Model is { } model && (model.Trim().Length == 0 || model.Length > MaxModelLength || Unstorable(model)))
                errors.Add(new($"{path}.model", "'model' must be a model name or alias such as 'mistral7b' or 'llama3.2:latest' (see GET /models/), or left out for the run's model."));

            if (node.Output is { } output && !GraphOutputs.All.Contains(output))
                errors.Add(new($"{path}.output", $"'{Shorten(output)}' is not an output kind; use \"text\" (the default) or \"verdict\"."));

            CheckTools(node, path, knownTools, errors);
        }
        return names;
    }

    private static void CheckTools(GraphNodeDefinition node, string path, IReadOnlyCollection<string>? knownTools, List<GraphError> errors)
    {
        if (node.Tools is not { } tools)
            return;
        if (tools.Count > MaxToolsPerNode)
            errors.Add(new($"{path}.tools", $"The node lists {tools.Count} tools; the limit is {MaxToolsPerNode}."));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var t = 0; t < tools.Count; t++)
        {
            var tool = tools[t];
            var toolPath = $"{path}.tools[{t}]";
            if (!IsValidName(tool))
                errors.Add(new(toolPath, $"'{Shorten(tool ?? "null")}' is not a tool name."));
            else if (!seen.Add(tool!))
                errors.Add(new(toolPath, $"'{tool}' is listed twice."));
            else if (knownTools is not null && !knownTools.Contains(tool!))
                errors.Add(new(toolPath, $"unknown tool '{tool}'; known: {string.Join(", ", knownTools)}."));
        }
    }

    private static void CheckEntry(GraphDefinition graph, Dictionary<string, int> nodes, List<GraphError> errors)
    {
        if (string.IsNullOrEmpty(graph.Entry))
            errors.Add(new("entry", "'entry' is required: the name of the node the run starts at."));
        else if (graph.Entry == GraphDefinition.End)
            errors.Add(new("entry", "'entry' must be a node; $end is where runs finish."));
        else if (!nodes.ContainsKey(graph.Entry) && graph.Nodes is { Count: > 0 })
            errors.Add(new("entry", $"unknown node '{Shorten(graph.Entry)}'; known: {Known(nodes)}."));
    }

    /// <summary>Checks each edge and the routing rules; returns, per node index, its valid outgoing edges (edge index).</summary>
    private static List<int>[] CheckEdges(GraphDefinition graph, Dictionary<string, int> nodes, List<GraphError> errors)
    {
        var nodeCount = graph.Nodes?.Count ?? 0;
        var outgoing = new List<int>[nodeCount];
        for (var i = 0; i < nodeCount; i++)
            outgoing[i] = [];

        if (graph.Edges is not { Count: > 0 } edges)
        {
            errors.Add(new("edges", $"'edges' is required and must hold at least one edge, e.g. {{\"from\": \"{graph.Entry}\", \"to\": \"{GraphDefinition.End}\"}}."));
            return outgoing;
        }
        if (edges.Count > MaxEdges)
        {
            errors.Add(new("edges", $"The graph has {edges.Count} edges; the limit is {MaxEdges}."));
            return outgoing;
        }

        // Per source node: its unconditional edge and its edge per verdict, to find ambiguous routes.
        var unconditional = new Dictionary<int, int>();
        var byVerdict = new Dictionary<(int Node, string Verdict), int>();
        for (var j = 0; j < edges.Count; j++)
        {
            var path = $"edges[{j}]";
            if (edges[j] is not { } edge)
            {
                errors.Add(new(path, "An edge must be an object, not null."));
                continue;
            }

            var from = -1;
            if (string.IsNullOrEmpty(edge.From))
                errors.Add(new($"{path}.from", "'from' is required: the node the edge leaves."));
            else if (edge.From == GraphDefinition.End)
                errors.Add(new($"{path}.from", "$end is where runs finish; no edge can leave it."));
            else if (!nodes.TryGetValue(edge.From, out from))
            {
                from = -1;
                errors.Add(new($"{path}.from", $"unknown node '{Shorten(edge.From)}'; known: {Known(nodes)}."));
            }

            var toValid = true;
            if (string.IsNullOrEmpty(edge.To))
            {
                toValid = false;
                errors.Add(new($"{path}.to", $"'to' is required: a node name or {GraphDefinition.End}."));
            }
            else if (edge.To != GraphDefinition.End && !nodes.ContainsKey(edge.To))
            {
                toValid = false;
                errors.Add(new($"{path}.to", $"unknown node '{Shorten(edge.To)}'; known: {Known(nodes)}, {GraphDefinition.End}."));
            }

            var whenValid = true;
            if (edge.When is { } when)
            {
                if (!GraphVerdicts.All.Contains(when))
                {
                    whenValid = false;
                    errors.Add(new($"{path}.when", $"'{Shorten(when)}' is not a verdict; use pass, revise or fail."));
                }
                else if (from >= 0 && !graph.Nodes![from].IsVerdict)
                {
                    whenValid = false;
                    errors.Add(new($"{path}.when", $"only edges from a node with \"output\": \"verdict\" can have 'when'; '{edge.From}' outputs text."));
                }
            }

            if (from < 0 || !toValid || !whenValid)
                continue;

            if (edge.When is null)
            {
                if (unconditional.TryGetValue(from, out var other))
                {
                    errors.Add(new(path, $"'{edge.From}' already has an unconditional edge (edges[{other}]); one node runs one successor, so two are ambiguous."));
                    continue;
                }
                unconditional[from] = j;
            }
            else
            {
                if (byVerdict.TryGetValue((from, edge.When), out var other))
                {
                    errors.Add(new($"{path}.when", $"'{edge.From}' already routes '{edge.When}' (edges[{other}]); two routes for one verdict are ambiguous."));
                    continue;
                }
                byVerdict[(from, edge.When)] = j;
            }
            outgoing[from].Add(j);
        }

        foreach (var (node, edgeIndex) in unconditional)
        {
            if (GraphVerdicts.All.All(v => byVerdict.ContainsKey((node, v))))
                errors.Add(new($"edges[{edgeIndex}]", $"'{graph.Nodes![node].Name}' routes every verdict (pass, revise, fail) already, so this unconditional edge is never taken; remove it."));
        }

        // Only nodes with a valid name can be referenced, so only they are told they lack an edge.
        foreach (var (name, index) in nodes)
        {
            if (outgoing[index].Count == 0 && !errors.Exists(e => e.Path.StartsWith("edges", StringComparison.Ordinal) && MentionsSource(edges, e, name)))
                errors.Add(new($"nodes[{index}]", $"'{name}' has no outgoing edge; add one, e.g. {{\"from\": \"{name}\", \"to\": \"{GraphDefinition.End}\"}}."));
        }
        return outgoing;
    }

    // An edge from this node that was refused already explains why it has none; do not report it twice.
    private static bool MentionsSource(List<GraphEdgeDefinition> edges, GraphError error, string name)
    {
        var close = error.Path.IndexOf(']', StringComparison.Ordinal);
        return close > 6
            && int.TryParse(error.Path.AsSpan(6, close - 6), out var j)
            && j < edges.Count && edges[j]?.From == name;
    }

    /// <summary>Reachability, cycles that cannot be left, and a path to $end, on a graph with valid references.</summary>
    private static void Analyse(GraphDefinition graph, Dictionary<string, int> nodes, List<int>[] outgoing, List<GraphError> errors)
    {
        var defs = graph.Nodes!;
        var edges = graph.Edges!;
        var n = defs.Count;
        int Target(int edge) => edges[edge].To == GraphDefinition.End ? -1 : nodes[edges[edge].To!];

        var entry = nodes[graph.Entry!];
        var reached = new bool[n];
        var queue = new Queue<int>();
        reached[entry] = true;
        queue.Enqueue(entry);
        while (queue.TryDequeue(out var node))
        {
            foreach (var edge in outgoing[node])
            {
                if (Target(edge) is var to and >= 0 && !reached[to])
                {
                    reached[to] = true;
                    queue.Enqueue(to);
                }
            }
        }
        for (var i = 0; i < n; i++)
        {
            if (!reached[i])
                errors.Add(new($"nodes[{i}]", $"nodes[{i}] '{defs[i].Name}' is unreachable from '{graph.Entry}'; add an edge to it or remove it."));
        }

        foreach (var component in StronglyConnected(n, i => outgoing[i].Select(Target).Where(t => t >= 0)))
        {
            var members = component.ToHashSet();
            var first = component.Min();
            if (!reached[first])
                continue;   // reported as unreachable already
            var cyclic = component.Count > 1 || outgoing[first].Any(e => Target(e) == first);
            var exits = component.Any(m => outgoing[m].Any(e => !members.Contains(Target(e))));
            if (!cyclic || exits)
                continue;

            var (cycle, closingEdge) = Cycle(first, members, outgoing, Target);
            var names = string.Join(" → ", cycle.Select(i => defs[i].Name));
            var extra = members.Count > cycle.Count - 1
                ? $" (the loop holds {string.Join(", ", component.Order().Select(i => defs[i].Name))})"
                : "";
            errors.Add(new($"edges[{closingEdge}]",
                $"cycle {names} has no edge leaving it{extra}: a run that enters it can only stop at max_steps, as failed. " +
                $"Add an edge out of it, e.g. from a verdict node to {GraphDefinition.End} \"when\": \"pass\"."));
        }

        // Backwards from $end: which nodes can finish a run.
        var finishes = new bool[n];
        var changed = true;
        while (changed)
        {
            changed = false;
            for (var i = 0; i < n; i++)
            {
                if (!finishes[i] && outgoing[i].Any(e => Target(e) is var t && (t < 0 || finishes[t])))
                    finishes[i] = changed = true;
            }
        }
        if (!finishes[entry])
            errors.Add(new("edges", $"no path from '{graph.Entry}' to {GraphDefinition.End}: no run of this graph can finish. Add an edge to {GraphDefinition.End}."));
    }

    /// <summary>A shortest cycle from <paramref name="start"/> back to itself inside its component, and the edge that closes it.</summary>
    private static (List<int> Cycle, int ClosingEdge) Cycle(int start, HashSet<int> members, List<int>[] outgoing, Func<int, int> target)
    {
        var previous = new Dictionary<int, (int Node, int Edge)>();
        var queue = new Queue<int>();
        queue.Enqueue(start);
        while (queue.TryDequeue(out var node))
        {
            foreach (var edge in outgoing[node])
            {
                var to = target(edge);
                if (to == start)
                {
                    var cycle = new List<int> { start };
                    for (var at = node; at != start; at = previous[at].Node)
                        cycle.Add(at);
                    cycle.Add(start);
                    cycle.Reverse(1, cycle.Count - 2);
                    return (cycle, edge);
                }
                if (members.Contains(to) && !previous.ContainsKey(to) && to != start)
                {
                    previous[to] = (node, edge);
                    queue.Enqueue(to);
                }
            }
        }
        throw new InvalidOperationException("A cyclic component has a cycle through each of its nodes.");
    }

    /// <summary>Tarjan's strongly connected components; recursion is at most <see cref="MaxNodes"/> deep (analysis runs only within the limit).</summary>
    private static List<List<int>> StronglyConnected(int n, Func<int, IEnumerable<int>> successors)
    {
        var index = new int[n];
        var low = new int[n];
        var onStack = new bool[n];
        Array.Fill(index, -1);
        var stack = new Stack<int>();
        var components = new List<List<int>>();
        var next = 0;

        void Connect(int v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack[v] = true;
            foreach (var w in successors(v))
            {
                if (index[w] < 0)
                {
                    Connect(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack[w])
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }
            if (low[v] != index[v])
                return;
            var component = new List<int>();
            int x;
            do
            {
                x = stack.Pop();
                onStack[x] = false;
                component.Add(x);
            } while (x != v);
            components.Add(component);
        }

        for (var v = 0; v < n; v++)
        {
            if (index[v] < 0)
                Connect(v);
        }
        return components;
    }

    private const string UnstorableText =
        "contains a NUL character (\\u0000) or a lone UTF-16 surrogate, which PostgreSQL cannot store (text, jsonb); remove it.";

    /// <summary>NUL or an unpaired surrogate: JSON can carry both as escapes, but the Backend's jsonb column refuses them.</summary>
    private static bool Unstorable(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0')
                return true;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                i++;
            else if (char.IsSurrogate(c))
                return true;
        }
        return false;
    }

    private static string Known(Dictionary<string, int> nodes) =>
        nodes.Count == 0 ? "(none)" : string.Join(", ", nodes.OrderBy(p => p.Value).Select(p => p.Key));

    // Echoed values are user input: keep the messages short whatever was sent.
    private static string Shorten(string value) => value.Length <= 60 ? value : value[..57] + "...";
}
