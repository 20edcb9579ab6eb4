using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Data;

public static class DataExtensions
{
    /// <summary>
    /// <see cref="AgentLabDb"/> on PostgreSQL (<c>ConnectionStrings:agentlabdb</c>) with short timeouts and a retrying
    /// execution strategy, the migration step, and the <see cref="ExecutionStore"/>.
    /// </summary>
    public static IServiceCollection AddAgentLabDatabase(this IServiceCollection services)
    {
        services.AddOptions<DatabaseOptions>().BindConfiguration(DatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddDbContextPool<AgentLabDb>((sp, options) =>
        {
            var settings = sp.GetRequiredService<IOptions<DatabaseOptions>>().Value;
            var configured = sp.GetRequiredService<IConfiguration>().GetConnectionString(DatabaseOptions.ConnectionStringName);
            options.UseNpgsql(settings.BuildConnectionString(configured), npgsql => npgsql
                .ExecutionStrategy(dependencies => new AgentLabExecutionStrategy(
                    dependencies, settings.MaxRetryCount, TimeSpan.FromMilliseconds(settings.MaxRetryDelayMilliseconds)))
                .MigrationsHistoryTable(AgentLabDb.MigrationsHistoryTable));
            // Every command reports to DatabaseHealth, which makes requests fail fast while the database is down.
            options.AddInterceptors(sp.GetRequiredService<DatabaseHealthInterceptor>());
            // The migrations are written by hand, with no model snapshot to compare against; MigrationSchemaTests
            // checks instead that the migrated schema has every column the model maps.
            options.ConfigureWarnings(w => w.Ignore(RelationalEventId.PendingModelChangesWarning));
        });
        services.AddSingleton<DatabaseState>();
        services.AddHostedService<DatabaseMigrator>();
        services.AddSingleton<DatabaseHealth>();
        services.AddHostedService(sp => sp.GetRequiredService<DatabaseHealth>());
        services.AddSingleton<DatabaseHealthInterceptor>();
        services.AddScoped<ExecutionStore>();
        services.AddScoped<NodeRunStore>();
        services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database");
        return services;
    }
}
