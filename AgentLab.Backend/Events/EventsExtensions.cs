namespace AgentLab.Backend.Events;

public static class EventsExtensions
{
    /// <summary>The Redis connection, the event publisher and the stored event log.</summary>
    public static IServiceCollection AddExecutionEvents(this IServiceCollection services)
    {
        services.AddSingleton<RedisConnection>();
        services.AddSingleton<ExecutionEventPublisher>();
        services.AddScoped<ExecutionEventLog>();
        services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis");
        return services;
    }
}
