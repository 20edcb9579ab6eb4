using AgentLab.Backend.Events;

namespace AgentLab.Backend.Streams;

public static class StreamsExtensions
{
    /// <summary>The live streams: their options, the per-replica hub (and its poll loop), the open-stream count.</summary>
    public static IServiceCollection AddExecutionStreams(this IServiceCollection services)
    {
        services.AddOptions<StreamOptions>().BindConfiguration(StreamOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ExecutionEventHub>();
        services.AddHostedService(sp => sp.GetRequiredService<ExecutionEventHub>());
        services.AddSingleton<OpenStreams>();
        return services;
    }
}
