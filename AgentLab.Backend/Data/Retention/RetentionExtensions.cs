namespace AgentLab.Backend.Data.Retention;

public static class RetentionExtensions
{
    /// <summary>
    /// <see cref="RetentionOptions"/> (validated at start) and the <see cref="RetentionJob"/>, registered once as a
    /// singleton that is also the hosted service, so an admin path can resolve it and call
    /// <see cref="RetentionJob.RunOnceAsync"/>.
    /// </summary>
    public static IServiceCollection AddRetention(this IServiceCollection services)
    {
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<RetentionJob>();
        services.AddHostedService(sp => sp.GetRequiredService<RetentionJob>());
        return services;
    }
}
