// The AgentLab AppHost: `dotnet run --project AgentLab.AppHost` builds and starts the whole lab, in dependency order.
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Lab;

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

// Next, with the infrastructure recipes: postgres + database "agentlabdb" and redis (Garnet), for example
//   var agentlabdb = builder.AddInfrastructure(new PostgresRecipe(...), port: 0);
//   var redis = builder.AddInfrastructure(new GarnetRecipe(...), port: 0);
// and backend.WithReference(agentlabdb).WaitFor(agentlabdb).WithReference(redis).WaitFor(redis).

var labservice = builder.AddProject("labservice", "AgentLab.LabService")
    .WithHttpEndpoint(port: 8001)
    .WithHttpHealthCheck("/health")
    .WithReference(ollama)
    .WaitFor(ollama);

builder.AddProject("backend", "AgentLab.Backend")
    .WithHttpEndpoint(port: 8000)
    .WithHttpHealthCheck("/health")
    .WithReference(labservice)
    .WaitFor(labservice);

await using var app = builder.Build();
return await app.RunAsync();
