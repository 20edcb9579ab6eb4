using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.LabService;

/// <summary>
/// A scripted Ollama on a real socket (in-process Kestrel on 127.0.0.1:0) that writes the protocol's lines exactly as
/// in reference/ollama-api.md. Tests replace <see cref="Chat"/> to script a fault.
/// </summary>
public sealed class FakeOllama : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeOllama(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public List<string> Models { get; } = ["mistral:7b", "llama3.2:latest", "qwen3:4b"];
    public HashSet<string> Loaded { get; } = ["mistral:7b"];
    public bool IsSimulator { get; set; }
    public string Version { get; set; } = "0.12.3";

    /// <summary>The /api/chat script; the default streams "Hello", " world" and a final metrics line.</summary>
    public Func<HttpContext, JsonElement, Task> Chat { get; set; } = (ctx, body) =>
        WriteLinesAsync(ctx, [TokenLine(ModelOf(body), "Hello"), TokenLine(ModelOf(body), " world"), FinalLine(ModelOf(body))]);

    /// <summary>The /api/pull script; the default streams Ollama's progress lines up to <c>success</c>.</summary>
    public Func<HttpContext, Task> Pull { get; set; } = ctx => WriteLinesAsync(ctx,
    [
        "{\"status\":\"pulling manifest\"}",
        "{\"status\":\"downloading sha256:aa\",\"digest\":\"sha256:aa\",\"total\":2142590208}",
        "{\"status\":\"downloading sha256:aa\",\"digest\":\"sha256:aa\",\"total\":2142590208,\"completed\":241970}",
        "{\"status\":\"verifying sha256 digest\"}",
        "{\"status\":\"writing manifest\"}",
        "{\"status\":\"success\"}",
    ]);

    public ConcurrentQueue<JsonElement> ChatRequests { get; } = new();
    public int TagsCalls;
    public int VersionCalls;

    /// <summary>Completes when a chat request's connection was closed by the client (the call was cancelled).</summary>
    public TaskCompletionSource ChatAborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<FakeOllama> StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        FakeOllama? fake = null;
        app.MapGet("/api/version", async ctx =>
        {
            Interlocked.Increment(ref fake!.VersionCalls);
            if (fake.IsSimulator)
                ctx.Response.Headers["X-Model-Server"] = "agentlab-simulator";
            await ctx.Response.WriteAsJsonAsync(new { version = fake.Version });
        });
        app.MapGet("/api/tags", async ctx =>
        {
            Interlocked.Increment(ref fake!.TagsCalls);
            await Task.Delay(50, ctx.RequestAborted);   // long enough for concurrent callers to overlap
            await WriteJsonAsync(ctx, $"{{\"models\":[{string.Join(',', fake.Models.Select(TagJson))}]}}");
        });
        app.MapGet("/api/ps", ctx => WriteJsonAsync(ctx,
            $"{{\"models\":[{string.Join(',', fake!.Loaded.Select(m => $"{{\"name\":\"{m}\",\"model\":\"{m}\",\"size\":5137025024,\"digest\":\"abc\",\"details\":{{\"family\":\"llama\"}},\"expires_at\":\"2026-01-01T00:05:00Z\",\"size_vram\":5137025024,\"context_length\":4096}}"))}]}}"));
        app.MapPost("/api/show", async ctx =>
        {
            var body = await JsonDocument.ParseAsync(ctx.Request.Body);
            var model = body.RootElement.GetProperty("model").GetString()!;
            if (!fake!.Models.Contains(model))
            {
                await ErrorAsync(ctx, 404, $"model '{model}' not found");
                return;
            }
            await WriteJsonAsync(ctx, "{\"modelfile\":\"FROM x\",\"parameters\":\"stop \\\"[INST]\\\"\",\"template\":\"{{ .Prompt }}\"," +
                "\"details\":{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":[\"llama\"],\"parameter_size\":\"7.2B\",\"quantization_level\":\"Q4_0\"}," +
                "\"model_info\":{\"general.architecture\":\"llama\",\"llama.context_length\":32768},\"capabilities\":[\"completion\",\"tools\"]}");
        });
        app.MapPost("/api/chat", async ctx =>
        {
            var body = (await JsonDocument.ParseAsync(ctx.Request.Body)).RootElement.Clone();
            fake!.ChatRequests.Enqueue(body);
            using var registration = ctx.RequestAborted.Register(() => fake.ChatAborted.TrySetResult());
            try
            {
                await fake.Chat(ctx, body);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // The client went away: exactly what the cancellation tests want to see.
            }
        });
        app.MapPost("/api/pull", ctx => fake!.Pull(ctx));

        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        fake = new FakeOllama(app, new Uri(address));
        return fake;
    }

    public static string ModelOf(JsonElement body) => body.GetProperty("model").GetString()!;

    public static string TokenLine(string model, string content) =>
        $"{{\"model\":\"{model}\",\"created_at\":\"2025-07-07T20:22:19.184789Z\",\"message\":{{\"role\":\"assistant\",\"content\":{JsonSerializer.Serialize(content)}}},\"done\":false}}";

    public static string FinalLine(string model, string doneReason = "stop") =>
        $"{{\"model\":\"{model}\",\"created_at\":\"2025-07-07T20:22:19.4Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done\":true,\"done_reason\":\"{doneReason}\"," +
        "\"total_duration\":182242375,\"load_duration\":41295167,\"prompt_eval_count\":169,\"prompt_eval_duration\":24573166,\"eval_count\":15,\"eval_duration\":115959084}";

    public static async Task WriteLinesAsync(HttpContext ctx, IEnumerable<string> lines, TimeSpan delay = default)
    {
        ctx.Response.ContentType = "application/x-ndjson";
        foreach (var line in lines)
        {
            await ctx.Response.WriteAsync(line + "\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            if (delay > TimeSpan.Zero)
                await Task.Delay(delay, ctx.RequestAborted);
        }
    }

    public static async Task ErrorAsync(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        await WriteJsonAsync(ctx, $"{{\"error\":{JsonSerializer.Serialize(message)}}}");
    }

    /// <summary>Waits until the client gives up; used to script stalls.</summary>
    public static Task HangAsync(HttpContext ctx) => Task.Delay(Timeout.Infinite, ctx.RequestAborted);

    private static async Task WriteJsonAsync(HttpContext ctx, string json)
    {
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(json, ctx.RequestAborted);
    }

    private static string TagJson(string name) =>
        $"{{\"name\":\"{name}\",\"model\":\"{name}\",\"modified_at\":\"2025-05-04T17:37:44.706015396-07:00\",\"size\":4113301824,\"digest\":\"f974a74358d6\"," +
        "\"details\":{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":[\"llama\"],\"parameter_size\":\"7.2B\",\"quantization_level\":\"Q4_0\"}}";

    /// <summary>A loopback port nobody listens on: connecting to it is refused at once.</summary>
    public static Uri RefusedAddress()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(cts.Token);
        await _app.DisposeAsync();
    }
}
