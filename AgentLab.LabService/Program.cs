using AgentLab.LabService;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;
using AgentLab.LabService.Orchestration.Definitions;
using AgentLab.LabService.Orchestration;
using AgentLab.LabService.Security;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddLabServices();         // options, Ollama client, model manager, error mapping, health — Extensions.cs
builder.Services.AddServiceAuth();

var app = builder.Build();
app.UseExceptionHandler();
try
{
    app.UseServiceAuth();         // only the Backend (holding the service key) gets past this
}
catch (ServiceAuthConfigurationException ex)
{
    Console.Error.WriteLine($"AgentLab.LabService will not start: {ex.Message}");
    return 1;
}
app.MapDefaultEndpoints();
app.MapInferenceApi();
app.MapModelsApi();
app.MapGraphDefinitionsApi();    // POST /orchestrate/graphs/validate
app.MapOrchestrateApi();
app.Run();
return 0;
