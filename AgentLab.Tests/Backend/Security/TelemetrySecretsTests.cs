using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using AgentLab.ServiceDefaults;
using AgentLab.Tests.Backend.Streams;
using AgentLab.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.Backend.Security;

/// <summary>
/// No token, ticket or prompt reaches a span or a log: every span of every source and every log record (message,
/// state values and scopes, captured at Trace) of a Backend on a real socket is searched for them.
/// </summary>
public sealed class TelemetrySecretsTests : StreamsTestBase
{
    [Fact]
    public async Task StreamsWithTicketsAndCallsWithBearerTokens_LeaveNoSecretInAnySpanOrLog()
    {
        using var spans = new SpanRecorder();
        var logs = new CapturingLoggerProvider();
        var (factory, address) = StartCapturing(logs);
        await using var _ = factory;
        await using var producer = await ProducerAsync(factory.Services.GetRequiredService<AgentLab.Backend.Events.ExecutionEventPublisher>());
        await Database.ExecuteAsync($"UPDATE executions SET owner = '{TestTokens.DefaultSubject}' WHERE id = '{producer.ExecutionId}'", Ct);
        await producer.WriteAsync(2, Ct);
        await producer.FinishAsync(Ct);
        using var http = new HttpClient { BaseAddress = address };
        var token = TestTokens.For();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var wsTicket = await MintAsync(http, producer.ExecutionId);
        var sseTicket = await MintAsync(http, producer.ExecutionId);
        var usedTicket = wsTicket;
        var tampered = token[..^4] + (token.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA");

        using (var socket = new ClientWebSocket())
        {
            await socket.ConnectAsync(KestrelBackend.WebSocketUri(address, $"{StreamClient.WebSocketPath(producer.ExecutionId)}?ticket={wsTicket}"), Ct).WaitAsync(Bound, Ct);
            await StreamClient.ReadToCloseAsync(socket, Ct);
        }
        using var anonymous = new HttpClient { BaseAddress = address };
        using (var sse = await anonymous.GetAsync($"{StreamClient.SsePath(producer.ExecutionId)}?ticket={sseTicket}", Ct).WaitAsync(Bound, Ct))
            Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        using (var reused = await anonymous.GetAsync($"{StreamClient.SsePath(producer.ExecutionId)}?ticket={usedTicket}", Ct).WaitAsync(Bound, Ct))
            Assert.Equal(HttpStatusCode.Unauthorized, reused.StatusCode);
        using (var withBearer = await http.GetAsync($"/api/v1/executions/{producer.ExecutionId}", Ct).WaitAsync(Bound, Ct))
            Assert.Equal(HttpStatusCode.OK, withBearer.StatusCode);
        using (var inQuery = await anonymous.GetAsync($"/api/v1/history?access_token={token}&token={token}", Ct).WaitAsync(Bound, Ct))
            Assert.Equal(HttpStatusCode.Unauthorized, inQuery.StatusCode);
        using (var bad = new HttpRequestMessage(HttpMethod.Get, "/api/v1/history"))
        {
            bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tampered);
            using var refused = await anonymous.SendAsync(bad, Ct).WaitAsync(Bound, Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        await factory.DisposeAsync();   // flushes the request-finished logs and ends every span

        var secrets = new[] { wsTicket, sseTicket, token, tampered, token.Split('.')[2], tampered.Split('.')[2] };
        var spanText = spans.Texts();
        var logText = logs.Texts();
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(spanText, t => t.Contains(secret, StringComparison.Ordinal));
            Assert.DoesNotContain(logText, t => t.Contains(secret, StringComparison.Ordinal));
        }
        // The test saw what it is about: the request lines (with their redacted queries) and the stream spans.
        Assert.Contains(logText, t => t.Contains($"ticket={SecretRedaction.Redacted}", StringComparison.Ordinal));
        Assert.Contains(logText, t => t.Contains($"access_token={SecretRedaction.Redacted}&token={SecretRedaction.Redacted}", StringComparison.Ordinal));
        Assert.Contains(spanText, t => t.Contains("/api/v1/ws/executions/{id}", StringComparison.Ordinal));
        Assert.Contains(spanText, t => t.Contains("/api/v1/executions/{id}/events", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 1)]
    public async Task PromptText_ReachesTheLogsOnlyWithCaptureContentOn(bool capture, int expected)
    {
        var logs = new CapturingLoggerProvider();
        var settings = new Dictionary<string, string?> { ["Telemetry:CaptureContent"] = capture ? "true" : "false" };
        var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, settings)
            .WithWebHostBuilder(b => b.ConfigureLogging(l => l.AddProvider(logs).AddFilter<CapturingLoggerProvider>(null, LogLevel.Trace)));
        await using var _ = factory;
        using var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.For());
        var marker = $"prompt-{Guid.NewGuid():N}";

        using var response = await PostJsonAsync(client, $$"""{"prompt": "{{marker}}", "mode": "async"}""");
        await AssertAcceptedAsync(response);
        await factory.DisposeAsync();

        // Formatted messages are captured as "<category>: <message>" (state values and scopes as other entries).
        Assert.Equal(expected, logs.Texts().Count(t => t.StartsWith("AgentLab.Backend.Security.ContentCapture: ", StringComparison.Ordinal)
            && t.Contains(marker, StringComparison.Ordinal)));
        if (!capture)
            Assert.DoesNotContain(logs.Texts(), t => t.Contains(marker, StringComparison.Ordinal));
    }

    [Fact]
    public void Redact_SecretQueryValues_BecomeRedactedAndEverythingElseStays()
    {
        Assert.Equal("/a?ticket=[REDACTED]&last_event_id=3", SecretRedaction.Redact("/a?ticket=abc-_9&last_event_id=3"));
        Assert.Equal("GET http://h/p?x=1&ACCESS_TOKEN=[REDACTED] - 401", SecretRedaction.Redact("GET http://h/p?x=1&ACCESS_TOKEN=ey.J.x - 401"));
        Assert.Equal("token=[REDACTED]", SecretRedaction.Redact("token=secret"));
        Assert.Equal("/p?mytoken=1&tickets=2", SecretRedaction.Redact("/p?mytoken=1&tickets=2"));
        var untouched = "/p?last_event_id=3";
        Assert.Same(untouched, SecretRedaction.Redact(untouched));
    }

    private (WebApplicationFactory<AgentLab.Backend.BackendMarker> Factory, Uri Address) StartCapturing(CapturingLoggerProvider logs)
    {
        var settings = new Dictionary<string, string?> { ["urls"] = "http://127.0.0.1:0" };
        var factory = new BackendFactory(Lab.BaseAddress, Database.ConnectionString, settings)
            .WithWebHostBuilder(b => b.ConfigureLogging(l => l
                .AddProvider(logs)
                // A provider rule beats the category rules of appsettings ("Microsoft.AspNetCore": "Warning").
                .AddFilter<CapturingLoggerProvider>(null, LogLevel.Trace)));
        factory.UseKestrel();
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return (factory, new Uri(address));
    }

    private static async Task<string> MintAsync(HttpClient http, Guid executionId)
    {
        using var response = await http.PostAsync("/api/v1/stream-tickets",
            new StringContent($$"""{"execution_id":"{{executionId}}"}""", System.Text.Encoding.UTF8, "application/json"), Ct).WaitAsync(Bound, Ct);
        var body = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        return body.GetProperty("ticket").GetString()!;
    }
}

/// <summary>Every span of every source in this process (other tests' too: the assertions look for this test's secrets only).</summary>
internal sealed class SpanRecorder : IDisposable
{
    private readonly ActivityListener listener;
    private readonly ConcurrentQueue<Activity> started = new();

    public SpanRecorder()
    {
        listener = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = started.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
    }

    /// <summary>Names, tags, events (with their tags), baggage and status of every span seen, as text.</summary>
    public List<string> Texts()
    {
        var texts = new List<string>();
        foreach (var activity in started)
        {
            texts.Add(activity.DisplayName);
            texts.Add(activity.OperationName);
            texts.Add(activity.StatusDescription ?? "");
            texts.AddRange(activity.TagObjects.Select(t => $"{t.Key}={t.Value}"));
            texts.AddRange(activity.Baggage.Select(b => $"{b.Key}={b.Value}"));
            foreach (var e in activity.Events)
            {
                texts.Add(e.Name);
                texts.AddRange(e.Tags.Select(t => $"{t.Key}={t.Value}"));
            }
        }
        return texts;
    }

    public void Dispose() => listener.Dispose();
}

/// <summary>Every log record at every level: its formatted message, its state values and its scopes, as text.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<string> texts = new();
    private IExternalScopeProvider? scopes;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;

    public List<string> Texts() => [.. texts];

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => provider.scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            provider.texts.Enqueue($"{category}: {formatter(state, exception)}");
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
                provider.texts.Enqueue(string.Join(" ", values.Select(v => $"{v.Key}={v.Value}")));
            if (exception is not null)
                provider.texts.Enqueue(exception.ToString());
            provider.scopes?.ForEachScope((scope, texts) =>
            {
                texts.Enqueue(scope?.ToString() ?? "");
                if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
                    texts.Enqueue(string.Join(" ", pairs.Select(v => $"{v.Key}={v.Value}")));
            }, provider.texts);
        }
    }
}
