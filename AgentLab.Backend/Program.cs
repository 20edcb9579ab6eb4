using AgentLab.Backend;
using AgentLab.Backend.Executions;
using AgentLab.Backend.Graphs;
using AgentLab.Backend.Health;
using AgentLab.Backend.History;
using AgentLab.Backend.Metrics;
using AgentLab.Backend.Models;
using AgentLab.Backend.Security;
using AgentLab.Backend.Security.RateLimiting;
using AgentLab.Backend.Streams;
using AgentLab.ServiceDefaults;

if (args is [TokenCommand.Verb, .. var tokenArgs])
    return TokenCommand.Run(tokenArgs, Console.Out, Console.Error);

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddBackendServices();           // options, typed LabService clients, runner, CORS, auth, OpenAPI: Extensions.cs

var app = builder.Build();
try
{
    app.EnsureAuthConfigured();         // no key outside Development: stop here, never run open
}
catch (AuthConfigurationException ex)
{
    Console.Error.WriteLine($"AgentLab.Backend will not start: {ex.Message}");
    return 1;
}

app.UseAgentLabForwardedHeaders();      // X-Forwarded-For only from configured proxies (none: ignored)
app.UseExceptionHandler();              // BackendExceptionHandler maps downstream failures to problems
app.UseExecutionIdBoundary();           // execution IDs are assigned here, never taken from a caller's baggage
app.UseCors(BackendExtensions.CorsPolicy);
app.UseRequestBodyLimit();              // 413 payload_too_large on every endpoint, before auth reads anything
app.UseAuthentication();
app.UseAgentLabRateLimits();            // per address, per subject, per subject's executions: 429 rate_limited
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapExecutionsApi();
app.MapStreamsApi();                   // WebSocket and SSE event streams
app.MapStreamTicketsApi();             // POST /api/v1/stream-tickets: how browsers open them
app.MapHistoryApi();
app.MapMetricsApi();
app.MapModelsApi();
app.MapGraphsApi();
app.MapHealthApi();
app.MapApiDocs();
app.Run();
return 0;
