using Microsoft.Extensions.DependencyInjection.Extensions;

namespace AgentLab.LabService.Orchestration.Tools;

public static class ToolsExtensions
{
    /// <summary>The built-in tools (calculator, current_time, text_stats) as <see cref="ILabTool"/>s, the <see cref="ToolRegistry"/>, and the executor's <see cref="ILabToolProvider"/> over them.</summary>
    public static IServiceCollection AddLabTools(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILabTool, CalculatorTool>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILabTool, UtcNowTool>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILabTool, TextStatsTool>());
        services.TryAddSingleton<ToolRegistry>();
        services.TryAddSingleton<ILabToolProvider, RegistryToolProvider>();
        return services;
    }
}
