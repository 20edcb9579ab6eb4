using System.Text.Json;
using AgentLab.LabService.Orchestration.Definitions;

namespace AgentLab.Tests.Orchestration;

/// <summary>Every rule of <see cref="GraphValidator"/>, on definitions written as the JSON a user sends.</summary>
public sealed class GraphValidatorTests
{
    private const string ReviewLoop = """
        { "name": "review-loop", "description": "write, criticise, revise", "entry": "writer", "max_steps": 12,
          "nodes": [ { "name": "writer", "role": "You write.", "model": "mistral7b" },
                     { "name": "critic", "role": "You judge.", "model": "mistral7b", "output": "verdict" } ],
          "edges": [ { "from": "writer", "to": "critic" },
                     { "from": "critic", "to": "writer", "when": "revise" },
                     { "from": "critic", "to": "$end", "when": "pass" } ] }
        """;

    private static GraphDefinition Parse(string json) =>
        JsonSerializer.Deserialize(json, GraphJsonContext.Default.GraphDefinition)!;

    private static IReadOnlyList<GraphError> Validate(string json, IReadOnlyCollection<string>? tools = null) =>
        GraphValidator.Validate(Parse(json), tools);

    /// <summary>A graph of text nodes named in <paramref name="nodes"/> with the given edges (from, to, when?).</summary>
    private static string Graph(string entry, string[] nodes, params (string From, string To, string? When)[] edges)
    {
        var nodeJson = nodes.Select(n => n.EndsWith('?')
            ? $$"""{"name":"{{n.TrimEnd('?')}}","role":"r","output":"verdict"}"""
            : $$"""{"name":"{{n}}","role":"r"}""");
        var edgeJson = edges.Select(e => e.When is null
            ? $$"""{"from":"{{e.From}}","to":"{{e.To}}"}"""
            : $$"""{"from":"{{e.From}}","to":"{{e.To}}","when":"{{e.When}}"}""");
        return $$"""{"name":"g","entry":"{{entry}}","nodes":[{{string.Join(",", nodeJson)}}],"edges":[{{string.Join(",", edgeJson)}}]}""";
    }

    private static GraphError Single(IReadOnlyList<GraphError> errors, string path)
    {
        var error = Assert.Single(errors);
        Assert.Equal(path, error.Path);
        return error;
    }

    [Fact]
    public void Validate_ReviewLoop_Valid()
    {
        var errors = Validate(ReviewLoop);

        Assert.Empty(errors);
    }

    [Fact]
    public void Validate_FourWorkerShapeWithReviseBackToExecutor_Valid()
    {
        var json = Graph("analyzer", ["analyzer", "executor", "validator?"],
            ("analyzer", "executor", null), ("executor", "validator", null),
            ("validator", "executor", "revise"), ("validator", "$end", "pass"), ("validator", "$end", "fail"));

        var errors = Validate(json);

        Assert.Empty(errors);
    }

    [Fact]
    public void Validate_SingleNodeStraightToEnd_Valid()
    {
        var errors = Validate(Graph("solo", ["solo"], ("solo", "$end", null)));

        Assert.Empty(errors);
    }

    [Fact]
    public void Validate_VerdictNodeWithDefaultEdgeAndOneConditional_Valid()
    {
        var json = Graph("a", ["a", "b?"], ("a", "b", null), ("b", "a", "revise"), ("b", "$end", null));

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_UncoveredVerdict_ValidBecauseItEndsTheRunAsFailed()
    {
        // Only "pass" is routed: revise and fail end the run with no_route, by design.
        var json = Graph("a", ["a?"], ("a", "$end", "pass"));

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_MaxStepsOmitted_DefaultApplies()
    {
        var graph = Parse(Graph("a", ["a"], ("a", "$end", null)));

        Assert.Empty(GraphValidator.Validate(graph));
        Assert.Equal(GraphDefinition.DefaultMaxSteps, graph.EffectiveMaxSteps);
    }

    [Fact]
    public void Validate_Null_RootError()
    {
        var errors = GraphValidator.Validate(null);

        Single(errors, "$");
    }

    [Theory]
    [InlineData("Review")]
    [InlineData("1st")]
    [InlineData("has space")]
    [InlineData("a23456789012345678901234567890123456789012")]
    [InlineData("")]
    public void Validate_BadGraphName_NameError(string name)
    {
        var json = ReviewLoop.Replace("\"review-loop\"", JsonSerializer.Serialize(name), StringComparison.Ordinal);

        Single(Validate(json), "name");
    }

    [Fact]
    public void Validate_NameAtFortyCharacters_Valid()
    {
        var json = ReviewLoop.Replace("review-loop", "a" + new string('b', 39), StringComparison.Ordinal);

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_NoName_NameRequired()
    {
        var json = ReviewLoop.Replace("\"name\": \"review-loop\",", "", StringComparison.Ordinal);

        Assert.Contains("required", Single(Validate(json), "name").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_BadNodeName_NodeNameError()
    {
        var json = Graph("a", ["a", "B"], ("a", "$end", null));

        Assert.Contains(Validate(json), e => e.Path == "nodes[1].name");
    }

    [Fact]
    public void Validate_DuplicateNodeName_NamesTheFirst()
    {
        var json = Graph("a", ["a", "b", "a"], ("a", "b", null), ("b", "$end", null));

        var error = Single(Validate(json), "nodes[2].name");

        Assert.Contains("nodes[0]", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(101)]
    [InlineData(-3)]
    public void Validate_MaxStepsOutOfRange_MaxStepsError(int steps)
    {
        var json = ReviewLoop.Replace("\"max_steps\": 12", $"\"max_steps\": {steps}", StringComparison.Ordinal);

        Single(Validate(json), "max_steps");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    public void Validate_MaxStepsAtBounds_Valid(int steps)
    {
        var json = ReviewLoop.Replace("\"max_steps\": 12", $"\"max_steps\": {steps}", StringComparison.Ordinal);

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_TwentyNodes_Valid()
    {
        var names = Enumerable.Range(0, 20).Select(i => $"n{i}").ToArray();
        var edges = names.Select((n, i) => (n, i == 19 ? "$end" : names[i + 1], (string?)null)).ToArray();

        Assert.Empty(Validate(Graph("n0", names, edges)));
    }

    [Fact]
    public void Validate_TwentyOneNodes_NodesError()
    {
        var names = Enumerable.Range(0, 21).Select(i => $"n{i}").ToArray();
        var edges = names.Select((n, i) => (n, i == 20 ? "$end" : names[i + 1], (string?)null)).ToArray();

        var error = Single(Validate(Graph("n0", names, edges)), "nodes");

        Assert.Contains("21", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NoNodes_NodesRequired()
    {
        var errors = Validate("""{"name":"g","entry":"a","nodes":[],"edges":[{"from":"a","to":"$end"}]}""");

        Assert.Contains(errors, e => e.Path == "nodes");
    }

    [Fact]
    public void Validate_RoleMissingOrBlank_RoleError()
    {
        var errors = Validate("""
            {"name":"g","entry":"a","nodes":[{"name":"a"},{"name":"b","role":"  "}],
             "edges":[{"from":"a","to":"b"},{"from":"b","to":"$end"}]}
            """);

        Assert.Equal(["nodes[0].role", "nodes[1].role"], errors.Select(e => e.Path));
    }

    [Fact]
    public void Validate_RoleTooLong_RoleErrorNamingTheLimit()
    {
        var role = new string('x', GraphValidator.MaxRoleLength + 1);
        var json = ReviewLoop.Replace("You write.", role, StringComparison.Ordinal);

        var error = Single(Validate(json), "nodes[0].role");

        Assert.Contains(GraphValidator.MaxRoleLength.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_RoleAtLimit_Valid()
    {
        var json = ReviewLoop.Replace("You write.", new string('x', GraphValidator.MaxRoleLength), StringComparison.Ordinal);

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_NulInRoleOrDescription_Errors()
    {
        var json = ReviewLoop.Replace("You write.", "a\\u0000b", StringComparison.Ordinal)
            .Replace("write, criticise, revise", "x\\u0000", StringComparison.Ordinal);

        Assert.Equal(["description", "nodes[0].role"], Validate(json).Select(e => e.Path));
    }

    [Fact]
    public void Parse_LoneSurrogate_RefusedBeforeItCouldReachJsonb()
    {
        var json = ReviewLoop.Replace("You write.", "a\\ud800b", StringComparison.Ordinal);

        Assert.Throws<JsonException>(() => Parse(json));
    }

    [Fact]
    public void Validate_LoneSurrogateBuiltInCode_RoleError()
    {
        var graph = Parse(ReviewLoop);
        graph.Nodes![0].Role = "a\ud800b";

        Single(GraphValidator.Validate(graph), "nodes[0].role");
    }

    [Fact]
    public void Validate_SurrogatePairInRole_Valid()
    {
        var json = ReviewLoop.Replace("You write.", "emoji \\ud83d\\ude00 ok", StringComparison.Ordinal);

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_DescriptionTooLong_DescriptionError()
    {
        var json = ReviewLoop.Replace("write, criticise, revise", new string('d', GraphValidator.MaxDescriptionLength + 1), StringComparison.Ordinal);

        Single(Validate(json), "description");
    }

    [Fact]
    public void Validate_BlankModel_ModelError()
    {
        var json = ReviewLoop.Replace("\"model\": \"mistral7b\" }", "\"model\": \" \" }", StringComparison.Ordinal);

        Single(Validate(json), "nodes[0].model");
    }

    [Fact]
    public void Validate_UnknownOutputKind_OutputError()
    {
        var json = ReviewLoop.Replace("\"output\": \"verdict\"", "\"output\": \"json\"", StringComparison.Ordinal);

        Assert.Contains(Validate(json), e => e.Path == "nodes[1].output");
    }

    [Fact]
    public void Validate_Tools_FormDuplicatesAndUnknownChecked()
    {
        var json = ReviewLoop.Replace("\"model\": \"mistral7b\" }", "\"tools\": [\"calculator\", \"Bad Tool\", \"calculator\", \"web\"] }", StringComparison.Ordinal);

        var errors = Validate(json, ["calculator", "current_time"]);

        Assert.Equal(["nodes[0].tools[1]", "nodes[0].tools[2]", "nodes[0].tools[3]"], errors.Select(e => e.Path));
        Assert.Contains("known: calculator, current_time", errors[2].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ToolsWithoutAKnownList_OnlyFormChecked()
    {
        var json = ReviewLoop.Replace("\"model\": \"mistral7b\" }", "\"tools\": [\"calculator\", \"anything\"] }", StringComparison.Ordinal);

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_EntryUnknown_NamesKnownNodes()
    {
        var json = ReviewLoop.Replace("\"entry\": \"writer\"", "\"entry\": \"wrter\"", StringComparison.Ordinal);

        var error = Single(Validate(json), "entry");

        Assert.Equal("unknown node 'wrter'; known: writer, critic.", error.Message);
    }

    [Fact]
    public void Validate_EntryMissingOrEnd_EntryError()
    {
        Single(Validate(ReviewLoop.Replace("\"entry\": \"writer\",", "", StringComparison.Ordinal)), "entry");
        Single(Validate(ReviewLoop.Replace("\"entry\": \"writer\"", "\"entry\": \"$end\"", StringComparison.Ordinal)), "entry");
    }

    [Fact]
    public void Validate_EdgeToUnknownNode_PathAndKnownNames()
    {
        var json = Graph("writer", ["writer", "critic?"],
            ("writer", "critic", null), ("critic", "writer", "revise"), ("critic", "critc", "pass"));

        var error = Single(Validate(json), "edges[2].to");

        Assert.Equal("unknown node 'critc'; known: writer, critic, $end.", error.Message);
    }

    [Fact]
    public void Validate_EdgeFromUnknownNode_FromError()
    {
        var json = Graph("a", ["a"], ("a", "$end", null), ("ghost", "a", null));

        Assert.Equal("unknown node 'ghost'; known: a.", Single(Validate(json), "edges[1].from").Message);
    }

    [Fact]
    public void Validate_EdgeFromEnd_FromError()
    {
        var json = Graph("a", ["a"], ("a", "$end", null), ("$end", "a", null));

        Single(Validate(json), "edges[1].from");
    }

    [Fact]
    public void Validate_EdgeWithoutFromOrTo_BothRequired()
    {
        var errors = Validate("""{"name":"g","entry":"a","nodes":[{"name":"a","role":"r"}],"edges":[{"from":"a","to":"$end"},{}]}""");

        Assert.Equal(["edges[1].from", "edges[1].to"], errors.Select(e => e.Path));
    }

    [Fact]
    public void Validate_NoEdges_EdgesRequired()
    {
        var errors = Validate("""{"name":"g","entry":"a","nodes":[{"name":"a","role":"r"}]}""");

        Assert.Equal(["edges"], errors.Select(e => e.Path));
    }

    [Fact]
    public void Validate_WhenFromTextNode_Refused()
    {
        var json = Graph("a", ["a", "b"], ("a", "b", "pass"), ("b", "$end", null));

        var error = Single(Validate(json), "edges[0].when");

        Assert.Contains("'a' outputs text", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_WhenNotAVerdict_Refused()
    {
        var json = Graph("a", ["a?"], ("a", "$end", "ok"));

        var error = Single(Validate(json), "edges[0].when");

        Assert.Contains("pass, revise or fail", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TwoUnconditionalEdgesFromOneNode_Ambiguous()
    {
        var json = Graph("a", ["a", "b", "c"], ("a", "b", null), ("a", "c", null), ("b", "$end", null), ("c", "$end", null));

        var error = Single(Validate(json), "edges[1]");

        Assert.Contains("edges[0]", error.Message, StringComparison.Ordinal);
        Assert.Contains("ambiguous", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_TwoEdgesForOneVerdict_Ambiguous()
    {
        var json = Graph("a", ["a?", "b"], ("a", "b", "pass"), ("a", "$end", "pass"), ("b", "$end", null));

        Single(Validate(json), "edges[1].when");
    }

    [Fact]
    public void Validate_UnconditionalEdgeAfterEveryVerdictRouted_NeverTaken()
    {
        var json = Graph("a", ["a?"], ("a", "$end", "pass"), ("a", "$end", "revise"), ("a", "$end", "fail"), ("a", "$end", null));

        Assert.Contains("never taken", Single(Validate(json), "edges[3]").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NodeWithoutOutgoingEdge_NamesTheFix()
    {
        var json = Graph("a", ["a", "b"], ("a", "b", null));

        var errors = Validate(json);

        var error = Single(errors, "nodes[1]");
        Assert.Contains("{\"from\": \"b\", \"to\": \"$end\"}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_UnreachableNode_NamesItAndTheEntry()
    {
        var json = Graph("writer", ["writer", "critic?", "editor", "summarizer"],
            ("writer", "critic", null), ("critic", "writer", "revise"), ("critic", "$end", "pass"),
            ("editor", "$end", null), ("summarizer", "$end", null));

        var errors = Validate(json);

        Assert.Equal(["nodes[2]", "nodes[3]"], errors.Select(e => e.Path));
        Assert.StartsWith("nodes[3] 'summarizer' is unreachable from 'writer'", errors[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_CycleWithNoExit_NamesThePathAndNoPathToEnd()
    {
        var json = Graph("writer", ["writer", "critic"], ("writer", "critic", null), ("critic", "writer", null));

        var errors = Validate(json);

        Assert.Equal(["edges[1]", "edges"], errors.Select(e => e.Path));
        Assert.StartsWith("cycle writer → critic → writer has no edge leaving it", errors[0].Message, StringComparison.Ordinal);
        Assert.StartsWith("no path from 'writer' to $end", errors[1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_SelfLoop_CycleOfOne()
    {
        var json = Graph("a", ["a"], ("a", "a", null));

        Assert.StartsWith("cycle a → a has no edge leaving it", Validate(json)[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ClosedCycleAfterAnExitFreeBranch_OnlyThatCycleReported()
    {
        // start → a; a revises to b, passes to $end; b ↔ c loop forever: a run reaching b never ends.
        var json = Graph("start", ["start", "a?", "b", "c"],
            ("start", "a", null), ("a", "b", "revise"), ("a", "$end", "pass"), ("b", "c", null), ("c", "b", null));

        var error = Single(Validate(json), "edges[4]");

        Assert.StartsWith("cycle b → c → b has no edge leaving it", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_LoopHoldingMoreNodesThanTheNamedCycle_ListsThemAll()
    {
        // a → b → a and b → c → b (b a verdict node): one closed loop of three nodes.
        var json = Graph("a", ["a", "b?", "c"], ("a", "b", null), ("b", "a", "revise"), ("b", "c", "pass"), ("c", "b", null));

        var error = Validate(json)[0];

        Assert.Contains("cycle a → b → a", error.Message, StringComparison.Ordinal);
        Assert.Contains("the loop holds a, b, c", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_CycleWithAVerdictExit_Valid()
    {
        var json = Graph("a", ["a", "b", "c?"], ("a", "b", null), ("b", "c", null), ("c", "a", "revise"), ("c", "$end", "fail"));

        Assert.Empty(Validate(json));
    }

    [Fact]
    public void Validate_ReferenceErrors_NoGraphAnalysisCascade()
    {
        // The misspelt target also leaves critic without a valid way out; only the misspelling is reported.
        var json = Graph("writer", ["writer", "critic"], ("writer", "critic", null), ("critic", "wrter", null));

        Single(Validate(json), "edges[1].to");
    }

    [Fact]
    public void Validate_ManyProblems_AllReportedInDocumentOrder()
    {
        var errors = Validate("""
            {"name":"Bad","entry":"nope","max_steps":0,
             "nodes":[{"name":"a","role":""},{"name":"a","role":"r","output":"xml"}],
             "edges":[{"from":"a","to":"zz"}]}
            """);

        Assert.Equal(["name", "max_steps", "nodes[0].role", "nodes[1].name", "nodes[1].output", "entry", "edges[0].to"],
            errors.Select(e => e.Path));
    }

    [Fact]
    public void Parse_UnknownMember_Refused()
    {
        var json = ReviewLoop.Replace("\"when\": \"revise\"", "\"condition\": \"revise\"", StringComparison.Ordinal);

        var ex = Assert.Throws<JsonException>(() => Parse(json));

        Assert.Contains("condition", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DuplicateMember_Refused()
    {
        var json = """{"name":"g","entry":"a","nodes":[{"name":"a","role":"r"}],"edges":[{"from":"a","to":"a","to":"$end"}]}""";

        Assert.Throws<JsonException>(() => Parse(json));
    }

    [Fact]
    public void Parse_StringForMaxSteps_Refused()
    {
        var json = ReviewLoop.Replace("\"max_steps\": 12", "\"max_steps\": \"12\"", StringComparison.Ordinal);

        Assert.Throws<JsonException>(() => Parse(json));
    }
}
