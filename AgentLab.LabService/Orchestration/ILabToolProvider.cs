using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration;

/// <summary>
/// The tools the executor may call, by name. Throws <see cref="UnknownToolException"/> for names it does not know
/// (the API answers 400 <c>unknown_tool</c>).
/// </summary>
public interface ILabToolProvider
{
    IReadOnlyList<string> Names { get; }

    IReadOnlyList<AITool> Resolve(IReadOnlyList<string> names);
}

/// <summary>The default until real tools are registered: no tools, so any requested name is unknown.</summary>
public sealed class NoLabTools : ILabToolProvider
{
    public IReadOnlyList<string> Names => [];

    public IReadOnlyList<AITool> Resolve(IReadOnlyList<string> names) =>
        names.Count == 0 ? [] : throw new UnknownToolException(names, []);
}

/// <summary>A request named tools that do not exist.</summary>
public sealed class UnknownToolException(IReadOnlyList<string> unknown, IReadOnlyList<string> known)
    : Exception($"Unknown tool(s): {string.Join(", ", unknown)}. Available tools: {(known.Count == 0 ? "none" : string.Join(", ", known))}.")
{
    public IReadOnlyList<string> Unknown { get; } = unknown;
    public IReadOnlyList<string> Known { get; } = known;
}
