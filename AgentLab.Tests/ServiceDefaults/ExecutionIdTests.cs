using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace AgentLab.Tests.ServiceDefaults;

public sealed class ExecutionIdTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    // The hosts answer in the wire contract's snake_case.
    private static readonly JsonSerializerOptions Wire = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private sealed record Seen(string? Baggage, string? CurrentId);

    private sealed record Answer(string TraceId, Seen Lab);

    /// <summary>A lab host that records the baggage it received, and a backend host that sets the id and calls it.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        public required TestHost Lab { get; init; }

        public required TestHost Backend { get; init; }

        public required RecordingLoggerProvider LabLogs { get; init; }

        public required RecordingLoggerProvider BackendLogs { get; init; }

        public static async Task<Pair> StartAsync(Guid executionId, bool plainClient = false)
        {
            var labLogs = new RecordingLoggerProvider();
            var backendLogs = new RecordingLoggerProvider();
            var lab = await TestHost.StartAsync(app => app.MapGet("/lab", (HttpContext http, ILogger<Pair> log) =>
            {
                log.LogInformation("lab handled");
                return new Seen(http.Request.Headers["baggage"].ToString(), AgentLabExecution.CurrentId);
            }), b => b.Logging.AddProvider(labLogs));

            var backend = await TestHost.StartAsync(app => app.MapGet("/run", async (IHttpClientFactory factory, ILogger<Pair> log, CancellationToken ct) =>
            {
                AgentLabExecution.SetCurrentId(executionId);
                log.LogInformation("backend after SetCurrentId");
                using var plain = new HttpClient();
                var client = plainClient ? plain : factory.CreateClient();
                var url = plainClient ? new Uri(lab.Address, "/lab") : new Uri("http://labservice/lab");
                var seen = await client.GetFromJsonAsync<Seen>(url, Wire, ct);
                return new Answer(Activity.Current!.TraceId.ToHexString(), seen!);
            }), b => b.Logging.AddProvider(backendLogs), new() { ["services:labservice:http:0"] = lab.Address.ToString() });

            return new Pair { Lab = lab, Backend = backend, LabLogs = labLogs, BackendLogs = backendLogs };
        }

        public async ValueTask DisposeAsync()
        {
            await Backend.DisposeAsync();
            await Lab.DisposeAsync();
        }
    }

    [Fact]
    public async Task FactoryClient_AfterSetCurrentId_SendsBaggageHeaderAndServerSeesId()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.NewGuid();
        await using var pair = await Pair.StartAsync(id);
        using var client = pair.Backend.CreateClient();

        var answer = await client.GetFromJsonAsync<Answer>("/run", Wire, ct).WaitAsync(Timeout, ct);

        Assert.Equal(id.ToString(), answer!.Lab.CurrentId);
        Assert.Equal($"agentlab.execution_id={id}", answer.Lab.Baggage?.Replace(" ", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PlainHttpClient_AfterSetCurrentId_DefaultPropagatorSendsBaggage()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.NewGuid();
        await using var pair = await Pair.StartAsync(id, plainClient: true);
        using var client = pair.Backend.CreateClient();

        var answer = await client.GetFromJsonAsync<Answer>("/run", Wire, ct).WaitAsync(Timeout, ct);

        Assert.Equal(id.ToString(), answer!.Lab.CurrentId);
        Assert.Equal($"agentlab.execution_id={id}", answer.Lab.Baggage?.Replace(" ", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerSpans_UnderExecution_CarryExecutionIdTag()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.NewGuid();
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "Microsoft.AspNetCore" or "System.Net.Http",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var pair = await Pair.StartAsync(id);
        using var client = pair.Backend.CreateClient();

        var answer = await client.GetFromJsonAsync<Answer>("/run", Wire, ct).WaitAsync(Timeout, ct);
        // Other tests' hosts share the listener: look only at this trace.
        var spans = stopped.Where(a => a.TraceId.ToHexString() == answer!.TraceId).ToArray();
        var labSpan = Assert.Single(spans, a => a.Kind == ActivityKind.Server && (string?)a.GetTagItem("http.route") == "/lab");
        // The backend's call to the lab, not the test's own call to the backend (same trace).
        var clientSpan = Assert.Single(spans, a => a.Kind == ActivityKind.Client && Equals(a.GetTagItem("server.port"), pair.Lab.Address.Port));

        Assert.Equal(id.ToString(), labSpan.GetTagItem(AgentLabExecution.ExecutionIdKey));
        Assert.Equal("GET /lab", labSpan.DisplayName);
        Assert.Equal(200, labSpan.GetTagItem("http.response.status_code"));
        Assert.Equal(id.ToString(), clientSpan.GetTagItem(AgentLabExecution.ExecutionIdKey));
    }

    [Fact]
    public async Task Logs_UnderExecution_CarryExecutionIdInScopeOnBothSides()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.NewGuid();
        await using var pair = await Pair.StartAsync(id);
        using var client = pair.Backend.CreateClient();

        await client.GetFromJsonAsync<Answer>("/run", Wire, ct).WaitAsync(Timeout, ct);

        var lab = Assert.Single(pair.LabLogs.Entries, e => e.Message == "lab handled");
        var backend = Assert.Single(pair.BackendLogs.Entries, e => e.Message == "backend after SetCurrentId");
        Assert.Equal(id.ToString(), lab.Scope[AgentLabExecution.ExecutionIdKey]);
        Assert.Equal(id.ToString(), backend.Scope[AgentLabExecution.ExecutionIdKey]);
    }

    [Fact]
    public async Task Problem_UnderExecution_CarriesExecutionId()
    {
        var ct = TestContext.Current.CancellationToken;
        var id = Guid.NewGuid();
        await using var host = await TestHost.StartAsync(app => app.MapGet("/fail", () =>
        {
            AgentLabExecution.SetCurrentId(id);
            return Problems.Create(502, "lab_unavailable", "LabService is unavailable");
        }));
        using var client = host.CreateClient();

        using var response = await client.GetAsync("/fail", ct).WaitAsync(Timeout, ct);
        var problem = await response.Content.ReadFromJsonAsync<Dictionary<string, object>>(ct);

        Assert.Equal(id.ToString(), problem!["execution_id"].ToString());
        Assert.Equal("lab_unavailable", problem["code"].ToString());
    }
}
