using AgentLab.LabService;
using AgentLab.LabService.Inference;
using AgentLab.LabService.Models;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddLabServices();         // options, Ollama client, model manager, error mapping, health — Extensions.cs

var app = builder.Build();
app.UseExceptionHandler();
app.MapDefaultEndpoints();
app.MapInferenceApi();
app.MapModelsApi();
app.Run();
