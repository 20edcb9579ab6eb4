using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace AgentLab.AppHost.Lab;

/// <summary>The lab's resource graph, declared once for `dotnet run --project AgentLab.AppHost` and the test host.</summary>
public static class LabGraph
{
    /// <returns>The credentials handed to the services (the test host mints its tokens with them).</returns>
    public static async Task<LabCredentials> DeclareAsync(LabAppBuilder builder, CancellationToken ct = default)
    {
        var credentials = LabCredentials.Create(builder);

        var ollama = await builder.AddModelServerAsync("ollama", ct).ConfigureAwait(false);

        // PostgreSQL (database agentlabdb) and Redis (Garnet): the configured ones, else servers the AppHost runs.
        IResourceBuilder<LabResource> agentlabdb = builder.Configuration.GetConnectionString("agentlabdb") is { Length: > 0 } db
            ? builder.AddConnectionString("agentlabdb", db)
            : AddPostgres(builder);
        IResourceBuilder<LabResource> redis = builder.Configuration.GetConnectionString("redis") is { Length: > 0 } redisServer
            ? builder.AddConnectionString("redis", redisServer)
            : AddGarnet(builder);

        var labservice = builder.AddProject("labservice", "AgentLab.LabService")
            .WithHttpEndpoint(port: 8001)
            .WithHttpHealthCheck("/health")
            .WithReference(ollama)
            .WaitFor(ollama)
            // Only the Backend knows this key, so nobody can call LabService around the Backend's checks.
            .WithEnvironment("ServiceAuth__Key", credentials.ServiceKey);

        builder.AddProject("backend", "AgentLab.Backend")
            .WithHttpEndpoint(port: 8000)
            .WithHttpHealthCheck("/health")
            .WithReference(agentlabdb)
            .WaitFor(agentlabdb)
            .WithReference(redis)
            .WaitFor(redis)
            .WithReference(labservice)
            .WaitFor(labservice)
            .WithEnvironment("Auth__SigningKey", credentials.EncodedSigningKey)
            .WithEnvironment("LabService__ServiceKey", credentials.ServiceKey);

        builder.ReadyNotes.Add($"Backend API tokens are signed with the key in {credentials.SigningKeySource}. A token for " +
            $"'{LabCredentials.DeveloperSubject}', valid {LabCredentials.DeveloperTokenLifetime.TotalHours:0} h " +
            "(mint more with `dotnet run --project AgentLab.Backend -- token --sub <you>`):");
        builder.ReadyNotes.Add($"  Authorization: Bearer {credentials.Mint(LabCredentials.DeveloperSubject)}");
        return credentials;
    }

    private static IResourceBuilder<LabResource> AddPostgres(LabAppBuilder builder)
    {
        var options = builder.Configuration.GetSection(PostgresOptions.Section).Get<PostgresOptions>() ?? new PostgresOptions();
        // A free port unless --Ports:postgres says otherwise: a developer's own PostgreSQL often holds 5432.
        options.Port = builder.PortFor("postgres");
        return builder.AddInfrastructure(new PostgresRecipe(options, builder.RepositoryRoot), options.Port);
    }

    private static IResourceBuilder<LabResource> AddGarnet(LabAppBuilder builder)
    {
        var port = builder.PortFor("redis");
        return builder.AddInfrastructure(new GarnetRecipe(port, builder.RepositoryRoot), port);
    }
}
