// The AgentLab AppHost: `dotnet run --project AgentLab.AppHost` builds and starts the whole lab, in dependency order.
using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Lab;

if (args is [LauncherSelfTest.Verb, var pidFile])
    return await LauncherSelfTest.RunAsync(pidFile);

LabAppBuilder builder;
try
{
    builder = LabAppBuilder.Create(args);
    await LabGraph.DeclareAsync(builder);  // prints a ready-to-use Backend token
}
catch (LabStartupException ex)
{
    Console.Error.WriteLine($"AgentLab could not start: {ex.Message}");
    return 1;
}

await using var app = builder.Build();
return await app.RunAsync();
