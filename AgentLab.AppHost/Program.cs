// The AgentLab AppHost: `dotnet run --project AgentLab.AppHost` builds and starts the whole lab, in dependency order.
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;
using AgentLab.AppHost.Lab;
using Microsoft.Extensions.Configuration;

if (args is [LauncherSelfTest.Verb, var pidFile])
    return await LauncherSelfTest.RunAsync(pidFile);

LabAppBuilder builder;
IResourceBuilder<LabResource> ollama;
try
{
    builder = LabAppBuilder.Create(args);
    ollama = await builder.AddModelServerAsync("ollama");
}
catch (LabStartupException ex)
{
    Console.Error.WriteLine($"AgentLab could not start: {ex.Message}");
    return 1;
}

// PostgreSQL (database agentlabdb) and Redis (Garnet): the configured ones, else servers the AppHost runs itself.
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
    .WaitFor(ollama);

builder.AddProject("backend", "AgentLab.Backend")
    .WithHttpEndpoint(port: 8000)
    .WithHttpHealthCheck("/health")
    .WithReference(agentlabdb)
    .WaitFor(agentlabdb)
    .WithReference(redis)
    .WaitFor(redis)
    .WithReference(labservice)
    .WaitFor(labservice);

await using var app = builder.Build();
return await app.RunAsync();

static IResourceBuilder<LabResource> AddPostgres(LabAppBuilder builder)
{
    var options = builder.Configuration.GetSection(PostgresOptions.Section).Get<PostgresOptions>() ?? new PostgresOptions();
    // A free port unless --Ports:postgres says otherwise: a developer's own PostgreSQL often holds 5432.
    options.Port = RecipeResource.PortFor(builder, "postgres");
    return builder.AddInfrastructure(new RecipeResource(new PostgresRecipe(options, builder.RepositoryRoot), builder.Output), options.Port);
}

static IResourceBuilder<LabResource> AddGarnet(LabAppBuilder builder)
{
    var port = RecipeResource.PortFor(builder, "redis");
    return builder.AddInfrastructure(new RecipeResource(new GarnetRecipe(port, builder.RepositoryRoot), builder.Output), port);
}
