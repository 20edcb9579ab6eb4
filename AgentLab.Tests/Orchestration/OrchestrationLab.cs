using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using AgentLab.LabService;
using AgentLab.ModelSimulator;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AgentLab.Tests.Orchestration;

/// <summary>
/// LabService in memory (WebApplicationFactory) on the in-process simulator at zero latency, for the
/// <c>/orchestrate/</c> API tests: the contract, not timing.
/// </summary>
internal sealed class OrchestrationLab : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private OrchestrationLab(SimulatorHost simulator, WebApplicationFactory<LabServiceMarker> factory)
    {
        Simulator = simulator;
        Factory = factory;
        Client = factory.CreateClient();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public SimulatorHost Simulator { get; }
    public WebApplicationFactory<LabServiceMarker> Factory { get; }
    public HttpClient Client { get; }

    /// <param name="models">Extra simulated models (faults, slow ones) besides the simulator's defaults.</param>
    public static async Task<OrchestrationLab> StartAsync(params SimulatedModel[] models)
    {
        var options = new SimulatorOptions { TimeToFirstTokenMs = 0, TokenLatencyMs = 0, LoadDurationMs = 0, PullStepDelayMs = 0 };
        options.Models.AddRange(models);
        var simulator = await SimulatorHost.StartAsync(options, Ct).WaitAsync(Bound, Ct);
        var factory = new WebApplicationFactory<LabServiceMarker>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("ConnectionStrings:ollama", $"Endpoint={simulator.BaseAddress}");
            builder.UseSetting("Ollama:ConnectTimeoutSeconds", "2");
        });
        return new OrchestrationLab(simulator, factory);
    }

    public Task<HttpResponseMessage> PostAsync(string json, bool ndjson = false)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/orchestrate/")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (ndjson)
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        return Client.SendAsync(request, Ct).WaitAsync(Bound, Ct);
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response) =>
        (await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(Ct), cancellationToken: Ct)).RootElement;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Factory.DisposeAsync();
        await Simulator.DisposeAsync();
    }
}
