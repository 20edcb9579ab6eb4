using System.Collections.Concurrent;
using AgentLab.AppHost.Dashboard;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>
/// The dashboard's pages (the real wwwroot from the test output) over canned JSON that follows the API contract
/// (/work/briefs/dashboard-api.md), with the contract's CSP, so the pages can be tested in Chromium without the lab.
/// One browser and one fake per test class.
/// </summary>
public sealed class DashboardPageFixture : IAsyncLifetime
{
    /// <summary>Markup that would set window.__xss if any server string reached the DOM as HTML.</summary>
    public const string Xss = "<img src=x onerror=window.__xss=1>";

    public const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

    private WebApplication? app;

    public string Url { get; private set; } = "";

    public BrowserSession? Browser { get; private set; }

    /// <summary>Every POST the pages made: path and the X-AgentLab-Dashboard header's value.</summary>
    public ConcurrentQueue<(string Path, string? Header)> Posts { get; } = new();

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        var wwwroot = Path.Combine(AppContext.BaseDirectory, "Dashboard", "wwwroot");
        var builder = DashboardHosting.CreateBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        app = builder.Build();
        app.Use(async (context, next) =>
        {
            // The contract's headers: a page that needs an inline script or style attribute breaks here too.
            context.Response.Headers.ContentSecurityPolicy =
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
            context.Response.Headers.XContentTypeOptions = "nosniff";
            context.Response.Headers.CacheControl = "no-cache";
            await next(context);
        });
        var files = new PhysicalFileProvider(wwwroot);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        MapApi(app);
        await app.StartAsync(ct).WaitAsync(TimeSpan.FromSeconds(20), ct);
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/";

        if (File.Exists(Support.Browser.ChromiumPath))
            Browser = await Support.Browser.LaunchAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
            await Browser.DisposeAsync();
        if (app is not null)
            await app.DisposeAsync();
    }

    /// <summary>Opens <paramref name="hash"/> (e.g. "#/traces") in a fresh page.</summary>
    public Task<BrowserPage> OpenAsync(string hash)
    {
        Support.Browser.SkipUnlessAvailable();
        return Browser!.OpenAsync(Url + hash, TestContext.Current.CancellationToken);
    }

    private void MapApi(WebApplication web)
    {
        web.MapGet("/api/resources", () => Json(Resources));
        web.MapPost("/api/resources/{name}/{action}", (string name, string action, HttpRequest request) =>
        {
            Posts.Enqueue(($"/api/resources/{name}/{action}", request.Headers["X-AgentLab-Dashboard"].FirstOrDefault()));
            return Results.Text("""{"name":"backend","kind":"project","state":"restarting","health":"unknown","restarts":1,"actions":["stop","restart"]}""",
                "application/json", statusCode: 202);
        });
        web.MapGet("/api/resources/{name}/console", (string name) => Json($$"""
            {"resource":"{{name}}","capacity":1000,"lines":[
              {"seq":1,"time":"2026-11-22T03:20:00Z","text":"info: listening on http://127.0.0.1:8000","is_error":false},
              {"seq":2,"time":"2026-11-22T03:20:01Z","text":"fail: {{Xss}}","is_error":true}]}
            """));
        web.MapGet("/api/resources/{name}/console/stream", async (HttpContext context, int? after) =>
        {
            // What the real stream does: every line after `after`, then live lines, until the page goes away.
            context.Response.ContentType = "text/event-stream";
            if ((after ?? 0) < 3)
                await context.Response.WriteAsync("id: 3\nevent: line\ndata: {\"seq\":3,\"time\":\"2026-11-22T03:20:02Z\",\"text\":\"streamed line three\",\"is_error\":false}\n\n");
            await context.Response.Body.FlushAsync();
            try { await Task.Delay(Timeout.Infinite, context.RequestAborted); } catch (OperationCanceledException) { }
        });
        web.MapGet("/api/logs", () => Json(Logs));
        web.MapGet("/api/traces", () => Json(Traces));
        web.MapGet("/api/traces/{id}", (string id) => id == TraceId
            ? Json(Trace)
            : Results.Problem(statusCode: 404, title: "Trace not found", extensions: new Dictionary<string, object?> { ["code"] = "trace_not_found" }));
        web.MapGet("/api/metrics", () => Json(Metrics));
    }

    private static IResult Json(string json) => Results.Text(json, "application/json");

    private const string Resources = """
        [{"name":"backend","kind":"project","state":"running","health":"healthy","endpoint":"http://127.0.0.1:8000","restarts":0,
          "started_at":"2026-11-22T03:20:00Z","uptime_seconds":12.5,"process_id":1234,"actions":["stop","restart"]},
         {"name":"postgres","kind":"infrastructure","state":"running","health":"healthy","endpoint":"tcp://127.0.0.1:5432","restarts":0,
          "uptime_seconds":30,"actions":["stop","restart"]},
         {"name":"labservice","kind":"project","state":"exited","health":"unknown","endpoint":"http://127.0.0.1:8001","restarts":2,
          "message":"exited with code 1","actions":["start"]}]
        """;

    private const string Logs = $$$"""
        {"records":[
          {"id":2,"time":"2026-11-22T03:20:05Z","resource":"labservice","level":"warning","severity_number":13,
           "category":"AgentLab.LabService.Inference","message":"Slow first token","attributes":{}},
          {"id":1,"time":"2026-11-22T03:20:04Z","resource":"backend","level":"information","severity_number":9,
           "category":"AgentLab.Backend.Executions.ExecutionRunner","message":"Prompt was {{{Xss}}}",
           "trace_id":"{{{TraceId}}}","span_id":"00f067aa0ba902b7","execution_id":"exec-1",
           "attributes":{"agentlab.execution_id":"exec-1","Evil":"{{{Xss}}}"}}],
         "kept":2,"capacity":20000,"dropped":0}
        """;

    private const string Traces = $$"""
        {"traces":[{"trace_id":"{{TraceId}}","name":"POST /api/v1/execute","resource":"backend","resources":["backend","labservice"],
          "start":"2026-11-22T03:20:04Z","duration_ms":41.2,"span_count":4,"error_count":0,"status":"ok","execution_ids":["01a201ec-48ec-76e1-b990-2b5abd3c4fa1"],
          "execution_types":["orchestrator"],"model_calls":3},
         {"trace_id":"0af7651916cd43dd8448eb211c80319c","name":"GET /api/v1/history","resource":"backend","resources":["backend"],
          "start":"2026-11-22T03:20:03Z","duration_ms":3.5,"span_count":1,"error_count":1,"status":"error","execution_ids":[],"execution_types":[],"model_calls":0}],
         "kept":5,"capacity":50000,"dropped":0}
        """;

    // Depth-first, as the contract orders them: root, its child, the child's child (the model call), a late sibling.
    private const string Trace = $$$"""
        {"trace_id":"{{{TraceId}}}","start":"2026-11-22T03:20:04Z","duration_ms":40,"resources":["backend","labservice"],
         "spans":[
          {"span_id":"a000000000000001","name":"POST /api/v1/execute","resource":"backend","scope":"Microsoft.AspNetCore","kind":"server",
           "start":"2026-11-22T03:20:04Z","offset_ms":0,"duration_ms":40,"status":"unset","is_gen_ai":false,"depth":0,
           "attributes":{"http.route":"/api/v1/execute","agentlab.execution_id":"exec-1"},"events":[]},
          {"span_id":"b000000000000002","parent_span_id":"a000000000000001","name":"node executor","resource":"labservice",
           "scope":"AgentLab.LabService","kind":"internal","start":"2026-11-22T03:20:04.005Z","offset_ms":5,"duration_ms":30,"status":"unset",
           "is_gen_ai":false,"depth":1,"attributes":{"agentlab.node":"executor","note":"{{{Xss}}}"},"events":[]},
          {"span_id":"c000000000000003","parent_span_id":"b000000000000002","name":"chat mistral:7b","resource":"labservice",
           "scope":"AgentLab.LabService","kind":"client","start":"2026-11-22T03:20:04.008Z","offset_ms":8,"duration_ms":25,"status":"unset",
           "is_gen_ai":true,"depth":2,
           "attributes":{"agentlab.node":"executor","gen_ai.request.model":"mistral:7b","gen_ai.usage.input_tokens":7,"gen_ai.usage.output_tokens":12,
             "gen_ai.response.finish_reasons":["stop"],"server.address":"127.0.0.1"},
           "events":[{"name":"first_token","time":"2026-11-22T03:20:04.010Z","attributes":{}}]},
          {"span_id":"d000000000000004","parent_span_id":"a000000000000001","name":"UPDATE executions","resource":"backend","scope":"Npgsql",
           "kind":"client","start":"2026-11-22T03:20:04.036Z","offset_ms":36,"duration_ms":2,"status":"error","status_message":"timeout",
           "is_gen_ai":false,"depth":1,"attributes":{},"events":[]}]}
        """;

    private const string Metrics = """
        {"charts":[
          {"id":"request_rate","title":"HTTP requests per second","unit":"req/s","series":[
            {"resource":"backend","name":"backend","points":[{"time":"2026-11-22T03:20:00Z","value":1},{"time":"2026-11-22T03:20:05Z","value":3.2},{"time":"2026-11-22T03:20:10Z","value":2}]},
            {"resource":"labservice","name":"labservice","points":[{"time":"2026-11-22T03:20:00Z","value":0.5},{"time":"2026-11-22T03:20:10Z","value":1.5}]}]},
          {"id":"tokens_per_second","title":"Model tokens per second","unit":"tokens/s","series":[
            {"resource":"labservice","name":"output","points":[]}]}],
         "instruments":[{"resource":"backend","name":"http.server.request.duration","unit":"s","type":"histogram","points":42}]}
        """;
}
