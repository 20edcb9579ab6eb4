using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Tools;

/// <summary>The executor's tools from the <see cref="ToolRegistry"/>: unknown names are refused before anything runs.</summary>
public sealed class RegistryToolProvider(ToolRegistry registry) : ILabToolProvider
{
    public IReadOnlyList<string> Names => registry.Names;

    public IReadOnlyList<AITool> Resolve(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
            return [];
        var validation = registry.Validate(names);
        if (!validation.IsValid)
            throw new UnknownToolException(validation.Unknown, validation.Known);
        return [.. registry.AsAITools(names)];
    }
}
