using AgentLab.LabService;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;
using AgentLab.LabService.Orchestration.Definitions;
using AgentLab.LabService.Orchestration;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddLabServices();         // options, Ollama client, model manager, error mapping, health — Extensions.cs

var app = builder.Build();
app.UseExceptionHandler();
app.MapDefaultEndpoints();
app.MapInferenceApi();
app.MapModelsApi();
app.MapGraphDefinitionsApi();    // POST /orchestrate/graphs/validate
app.MapOrchestrateApi();
app.Run();
