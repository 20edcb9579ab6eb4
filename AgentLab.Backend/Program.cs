using AgentLab.Backend;
using AgentLab.Backend.Executions;
using AgentLab.Backend.Graphs;
using AgentLab.Backend.Health;
using AgentLab.Backend.History;
using AgentLab.Backend.Metrics;
using AgentLab.Backend.Models;
using AgentLab.Backend.Streams;
using AgentLab.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddBackendServices();           // options, typed LabService clients, runner, CORS, OpenAPI: Extensions.cs

var app = builder.Build();
app.UseExceptionHandler();              // BackendExceptionHandler maps downstream failures to problems
app.UseExecutionIdBoundary();           // execution IDs are assigned here, never taken from a caller's baggage
app.UseCors(BackendExtensions.CorsPolicy);
app.MapDefaultEndpoints();
app.MapExecutionsApi();
app.MapStreamsApi();                   // WebSocket and SSE event streams
app.MapHistoryApi();
app.MapMetricsApi();
app.MapModelsApi();
app.MapGraphsApi();
app.MapHealthApi();
app.MapApiDocs();
app.Run();
