using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.Backend;

/// <summary>One request the fake LabService received.</summary>
public sealed record LabRequest(string Method, string Path, string Body, string? Baggage, string? Accept);

/// <summary>
/// A LabService stand-in on a real socket (127.0.0.1, ephemeral port) that answers the documented wire contract
/// with literal JSON, so the Backend is tested against the contract rather than against its own DTOs.
/// </summary>
public sealed class FakeLabService : IAsyncDisposable
{
    public const string InferenceJson = """
        {"output":"2, 3 y 5","model":"mistral:7b","requested_model":"mistral7b","model_server":"simulator","done_reason":"stop",
         "metrics":{"total_duration_ms":120.5,"time_to_first_token_ms":12.25,"load_duration_ms":3.5,"prompt_eval_duration_ms":8,
                    "eval_duration_ms":100,"prompt_tokens":11,"completion_tokens":7,"tokens_per_second":70,"wall_duration_ms":121}}
        """;

    public const string ModelsJson = """
        {"model_server":"simulator","default_model":"mistral:7b","default_num_ctx":4096,"models":[{"name":"mistral:7b","aliases":["mistral7b"],"family":"llama","parameter_size":"7.2B",
         "quantization_level":"Q4_0","size":4109865159,"modified_at":"2026-01-02T03:04:05Z","capabilities":["completion"],
         "context_length":32768,"loaded":true}]}
        """;

    public const string HealthyJson = """
        {"status":"healthy","checks":{"model_server":{"status":"healthy","duration_ms":2.5,"description":"simulator answers",
         "data":{"endpoint":"http://127.0.0.1:11434","version":"0.9.0","server_kind":"simulator","latency_ms":1.75}}}}
        """;

    private readonly WebApplication _app;

    private FakeLabService(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public ConcurrentQueue<LabRequest> Received { get; } = new();

    public Func<HttpContext, Task> Inference { get; set; } = Json(StatusCodes.Status200OK, InferenceJson);
    public Func<HttpContext, Task> Models { get; set; } = Json(StatusCodes.Status200OK, ModelsJson);
    public Func<HttpContext, Task> Health { get; set; } = Json(StatusCodes.Status200OK, HealthyJson);

    /// <summary><c>POST /orchestrate/graphs/validate</c>; by default accepts any definition named "review-loop".</summary>
    public Func<HttpContext, Task> ValidateGraph { get; set; } = Json(StatusCodes.Status200OK, GraphValidJson);

    /// <summary><c>POST /orchestrate/</c>; by default streams a completed analyzer → executor → validator run.</summary>
    public Func<HttpContext, Task> Orchestrate { get; set; } = Ndjson(OrchestrateEvents(["analyzer", "executor", "validator"]));

    /// <summary>A LabService NodeRun as JSON (one model call, 5 + 3 tokens).</summary>
    public static string NodeRunJson(string name, string output, bool restored = false)
    {
        var route = name == "validator" ? "\"pass\"" : "null";
        var restoredJson = restored ? ",\"restored\":true" : "";
        return $$"""{"name":"{{name}}","status":"completed","attempt":1,"started_at":"2026-11-22T10:00:00+00:00","ended_at":"2026-11-22T10:00:01+00:00","duration_ms":1000,"output":"{{output}}","route":{{route}},"metrics":{"duration_ms":1000,"model_calls":1,"prompt_tokens":5,"completion_tokens":3,"time_to_first_token_ms":4.5,"tool_calls":0,"prompt_version":"{{name}}.v1"}{{restoredJson}}}""";
    }

    public static string NodeCompletedEvent(long seq, string run, string name) =>
        $$"""{"seq":{{seq}},"type":"node_completed","node":"{{name}}","run":{{run}},"ts":"2026-11-22T10:00:01+00:00"}""";

    /// <summary>The <c>completed</c> event of a run over <paramref name="runs"/> (node runs as JSON) ending with <paramref name="stopCode"/>.</summary>
    public static string CompletedEvent(long seq, IReadOnlyList<string> runs, IReadOnlyList<string> names, string stopCode = "completed", string? budget = null)
    {
        var edges = string.Join(",", names.Zip(names.Skip(1).Append("$end"), (a, b) => $$"""{"from":"{{a}}","to":"{{b}}","step":1}"""));
        var budgetJson = budget is null ? "" : $$""","budget":"{{budget}}" """;
        return $$"""{"seq":{{seq}},"type":"completed","data":{"output":"final answer","model":"mistral:7b","model_server":"simulator","flow":{"nodes":[{{string.Join(",", runs)}}],"edges":[{{edges}}],"iterations":1},"metrics":{"total_duration_ms":3000,"time_to_first_token_ms":4.5,"model_calls":{{runs.Count}},"prompt_tokens":{{5 * runs.Count}},"completion_tokens":{{3 * runs.Count}},"tool_calls":0,"steps":{{runs.Count}}},"stop_reason":{"code":"{{stopCode}}","message":"stopped: {{stopCode}}"{{budgetJson}}""" + "}}}";
    }

    /// <summary>The events of a whole run over <paramref name="names"/>: started/completed per node, then <c>completed</c>.</summary>
    public static string[] OrchestrateEvents(IReadOnlyList<string> names, string stopCode = "completed", string? budget = null)
    {
        var lines = new List<string>();
        var runs = names.Select(n => NodeRunJson(n, $"{n} output")).ToList();
        for (var i = 0; i < names.Count; i++)
        {
            lines.Add($$"""{"seq":{{lines.Count + 1}},"type":"node_started","node":"{{names[i]}}","attempt":1,"step":{{i + 1}},"ts":"2026-11-22T10:00:00+00:00"}""");
            lines.Add(NodeCompletedEvent(lines.Count + 1, runs[i], names[i]));
        }
        lines.Add(CompletedEvent(lines.Count + 1, runs, names, stopCode, budget));
        return [.. lines];
    }

    /// <summary>Streams NDJSON lines, flushing after each one.</summary>
    public static Func<HttpContext, Task> Ndjson(params string[] lines) => async ctx =>
    {
        await StartNdjsonAsync(ctx);
        foreach (var line in lines)
            await WriteLineAsync(ctx, line);
    };

    public static async Task StartNdjsonAsync(HttpContext ctx)
    {
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/x-ndjson";
        await ctx.Response.StartAsync(ctx.RequestAborted);
    }

    public static async Task WriteLineAsync(HttpContext ctx, string line)
    {
        await ctx.Response.WriteAsync(line + "\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    /// <summary>The NDJSON lines of a streamed <c>/inference/</c> call: started, one token line each, completed.</summary>
    public static string[] InferenceLines(IReadOnlyList<string> tokens)
    {
        var lines = new List<string> { """{"type":"started","model":"mistral:7b","model_server":"simulator"}""" };
        lines.AddRange(tokens.Select(t => $$"""{"type":"token","content":{{System.Text.Json.JsonSerializer.Serialize(t)}}}"""));
        var output = System.Text.Json.JsonSerializer.Serialize(string.Concat(tokens));
        lines.Add($$"""{"type":"completed","result":{"output":{{output}},"model":"mistral:7b","requested_model":"mistral7b","model_server":"simulator","done_reason":"stop","metrics":{"total_duration_ms":120.5,"time_to_first_token_ms":12.25,"load_duration_ms":3.5,"prompt_eval_duration_ms":8,"eval_duration_ms":100,"prompt_tokens":11,"completion_tokens":{{tokens.Count}},"tokens_per_second":70,"wall_duration_ms":121""" + "}}}");
        return [.. lines];
    }

    /// <summary>Streams <paramref name="tokens"/> as LabService's <c>/inference/</c> NDJSON answer.</summary>
    public static Func<HttpContext, Task> InferenceNdjson(params string[] tokens) => Ndjson(InferenceLines(tokens));

    /// <summary>
    /// Streams <c>started</c> and <paramref name="tokens"/>, then hangs until the Backend aborts the request, which
    /// completes <paramref name="aborted"/> (the model call would be cancelled there).
    /// </summary>
    public static Func<HttpContext, Task> InferenceThenHang(TaskCompletionSource aborted, params string[] tokens) => async ctx =>
    {
        ctx.RequestAborted.Register(() => aborted.TrySetResult());
        try
        {
            await StartNdjsonAsync(ctx);
            foreach (var line in InferenceLines(tokens).SkipLast(1))
                await WriteLineAsync(ctx, line);
            await Task.Delay(Timeout.InfiniteTimeSpan, ctx.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The Backend went away, as a cancel should make it.
        }
    };

    public const string GraphValidJson = """{"valid":true,"name":"review-loop","nodes":2,"edges":3,"max_steps":12}""";

    public static async Task<FakeLabService> StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // The test output folder holds the services' appsettings.json (with Kestrel endpoints); ignore them.
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeLabService? fake = null;

        app.MapPost("/inference/", async ctx => { await Record(fake!, ctx); await fake!.Inference(ctx); });
        app.MapGet("/models/", async ctx => { await Record(fake!, ctx); await fake!.Models(ctx); });
        app.MapGet("/health", async ctx => { await Record(fake!, ctx); await fake!.Health(ctx); });
        app.MapPost("/orchestrate/", async ctx => { await Record(fake!, ctx); await fake!.Orchestrate(ctx); });
        app.MapPost("/orchestrate/graphs/validate", async ctx => { await Record(fake!, ctx); await fake!.ValidateGraph(ctx); });

        await app.StartAsync(ct).WaitAsync(TimeSpan.FromSeconds(10), ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        fake = new FakeLabService(app, new Uri(address));
        return fake;
    }

    /// <summary>Answers with a literal JSON body.</summary>
    public static Func<HttpContext, Task> Json(int status, string json, string contentType = "application/json") => async ctx =>
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = contentType;
        await ctx.Response.WriteAsync(json, ctx.RequestAborted);
    };

    /// <summary>Answers with a LabService problem document.</summary>
    public static Func<HttpContext, Task> Problem(int status, string code, string title, string detail,
        string extraMembers = "", string? retryAfter = null) => async ctx =>
    {
        if (retryAfter is not null)
            ctx.Response.Headers.RetryAfter = retryAfter;
        var extra = extraMembers.Length > 0 ? "," + extraMembers : "";
        await Json(status, $$"""{"type":"about:blank","title":"{{title}}","status":{{status}},"detail":"{{detail}}","code":"{{code}}","trace_id":"lab-trace"{{extra}}}""",
            "application/problem+json")(ctx);
    };

    /// <summary>Never answers until the caller goes away.</summary>
    public static Func<HttpContext, Task> Hang => async ctx =>
    {
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ctx.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            // The Backend gave up, as it should.
        }
    };

    /// <summary>An address where nothing listens: the port was bound and released.</summary>
    public static Uri ClosedAddress()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    private static async Task Record(FakeLabService fake, HttpContext ctx)
    {
        using var reader = new StreamReader(ctx.Request.Body);
        var body = await reader.ReadToEndAsync(ctx.RequestAborted);
        fake.Received.Enqueue(new LabRequest(ctx.Request.Method, ctx.Request.Path, body,
            ctx.Request.Headers["baggage"].ToString() is { Length: > 0 } b ? b : null, ctx.Request.Headers.Accept.ToString()));
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stopping.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
