using System.Text.Json;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>The built-in tools by name (case-insensitive), and their <see cref="AITool"/> form for <see cref="ChatOptions.Tools"/>.</summary>
public sealed class ToolRegistry
{
    private readonly Dictionary<string, ILabTool> _byName = new(StringComparer.OrdinalIgnoreCase);

    public ToolRegistry(IEnumerable<ILabTool> tools)
    {
        foreach (var tool in tools)
        {
            if (!_byName.TryAdd(tool.Name, tool))
                throw new InvalidOperationException($"Two tools are named '{tool.Name}'; tool names must be unique (case-insensitive).");
        }
        All = [.. _byName.Values.OrderBy(t => t.Name, StringComparer.Ordinal)];
        Names = [.. All.Select(t => t.Name)];
    }

    /// <summary>The built-in tools on the given clock, for code and tests that do not use DI.</summary>
    public static ToolRegistry CreateDefault(TimeProvider? time = null) =>
        new([new CalculatorTool(), new UtcNowTool(time ?? TimeProvider.System), new TextStatsTool()]);

    /// <summary>Every tool, ordered by name.</summary>
    public IReadOnlyList<ILabTool> All { get; }

    /// <summary>Every tool's name, ordered.</summary>
    public IReadOnlyList<string> Names { get; }

    public bool TryGet(string name, out ILabTool tool) => _byName.TryGetValue(name, out tool!);

    /// <summary>
    /// Which of <paramref name="names"/> are not tools (each once, as the caller spelled it), with the known names:
    /// what a 400 <c>unknown_tool</c> needs to say.
    /// </summary>
    public ToolValidation Validate(IEnumerable<string> names)
    {
        var unknown = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            if (!_byName.ContainsKey(name) && seen.Add(name))
                unknown.Add(name);
        }
        return new ToolValidation(unknown, Names);
    }

    /// <summary>
    /// The tools as <see cref="AIFunction"/>s for <see cref="ChatOptions.Tools"/>: all of them, or the named ones
    /// (validate first: an unknown name throws). OllamaClient sends each as <c>{"type":"function","function":{name,
    /// description, parameters}}</c>, parameters being <see cref="ILabTool.ParametersSchema"/>.
    /// </summary>
    public IList<AITool> AsAITools(IEnumerable<string>? names = null)
    {
        if (names is null)
            return [.. All.Select(t => (AITool)new LabToolFunction(t))];
        var result = new List<AITool>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in names)
        {
            if (!TryGet(name, out var tool))
                throw new ArgumentException($"Unknown tool '{name}'; known: {string.Join(", ", Names)}. Call Validate first.", nameof(names));
            if (seen.Add(tool.Name))
                result.Add(new LabToolFunction(tool));
        }
        return result;
    }
}

/// <summary>The result of <see cref="ToolRegistry.Validate"/>.</summary>
public sealed record ToolValidation(IReadOnlyList<string> Unknown, IReadOnlyList<string> Known)
{
    public bool IsValid => Unknown.Count == 0;
}

/// <summary>
/// An <see cref="ILabTool"/> as an <see cref="AIFunction"/>. Invoking it returns a string for the tool message: the
/// value, or <c>"error: ..."</c> so the model sees that the call failed and why.
/// </summary>
public sealed class LabToolFunction(ILabTool tool) : AIFunction
{
    public const string ErrorPrefix = "error: ";

    public ILabTool Tool => tool;

    public override string Name => tool.Name;

    public override string Description => tool.Description;

    public override JsonElement JsonSchema => tool.ParametersSchema;

    protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
    {
        var result = await tool.InvokeAsync(ToJson(arguments), cancellationToken).ConfigureAwait(false);
        return result.Ok ? result.Content : ErrorPrefix + result.Content;
    }

    /// <summary>
    /// The arguments as one JSON object. From OllamaClient the values are already <see cref="JsonElement"/>s; other
    /// callers may pass plain .NET values.
    /// </summary>
    public static JsonElement ToJson(IEnumerable<KeyValuePair<string, object?>>? arguments)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (key, value) in arguments ?? [])
            {
                json.WritePropertyName(key);
                switch (value)
                {
                    case null: json.WriteNullValue(); break;
                    case JsonElement e: e.WriteTo(json); break;
                    case string s: json.WriteStringValue(s); break;
                    default: JsonSerializer.Serialize(json, value, AIJsonUtilities.DefaultOptions.GetTypeInfo(value.GetType())); break;
                }
            }
            json.WriteEndObject();
        }
        using var document = JsonDocument.Parse(buffer.ToArray());
        return document.RootElement.Clone();
    }
}
