using System.Diagnostics;
using System.Net;
using System.Text.Json;
using AgentLab.AppHost.Dashboard;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using static AgentLab.Tests.AppHost.RunnerTestKit;

namespace AgentLab.Tests.AppHost.Dashboard;

/// <summary>Lab apps of small shell resources with the dashboard on a free port, and a client for it.</summary>
internal static class DashboardWebKit
{
    public const string UntilTerm = "trap 'exit 0' TERM; echo \"up $$\"; while true; do sleep 0.05; done";

    /// <summary>A client on 127.0.0.1 (an allowed Host) that never follows redirects, so tests see them.</summary>
    public static HttpClient Client(LabApp app, HttpMessageHandler? handler = null) =>
        new(handler ?? new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{app.Dashboard!.Url!.Port}/"),
            Timeout = Bound,
        };

    public static HttpRequestMessage Post(string path, bool withHeader = true)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (withHeader)
            request.Headers.Add(DashboardAccess.CsrfHeader, "1");
        return request;
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task<JsonElement> ResourceAsync(HttpClient client, string name, CancellationToken ct)
    {
        using var response = await client.GetAsync("api/resources", ct).WaitAsync(Bound, ct);
        response.EnsureSuccessStatusCode();
        return (await JsonAsync(response, ct)).EnumerateArray().Single(r => r.GetProperty("name").GetString() == name);
    }

    public static string[] Actions(JsonElement resource) =>
        [.. resource.GetProperty("actions").EnumerateArray().Select(a => a.GetString()!)];
}

public sealed class DashboardWebTests
{
    [Fact]
    public async Task Root_AssetsBuilt_ServesTheIndexWithNoCache()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        using var client = DashboardWebKit.Client(app);

        using var response = await client.GetAsync("/", ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.CacheControl?.NoCache, "Cache-Control: no-cache missing");
        Assert.True(File.Exists(Path.Combine(DashboardWebApp.AssetsRoot, "index.html")),
            "the test project's output has no Dashboard/wwwroot/index.html");
    }

    [Fact]
    public async Task AssetsMissing_Handler_Answers503WithTheCodeAndWhatToDo()
    {
        var context = new DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        context.Response.Body = new MemoryStream();

        await DashboardWebApp.AssetsMissing().ExecuteAsync(context);

        context.Response.Body.Position = 0;
        var text = await new StreamReader(context.Response.Body).ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.Equal(StatusCodes.Status503ServiceUnavailable, context.Response.StatusCode);
        Assert.StartsWith("text/plain", context.Response.ContentType);
        Assert.Contains("dashboard_assets_missing", text);
        Assert.Contains("dotnet build AgentLab.AppHost", text);
    }

    [Fact]
    public async Task Start_DefaultOptions_BindsLoopbackOnly()
    {
        var ct = TestContext.Current.CancellationToken;
        var options = new DashboardOptions { Port = 0, OtlpPort = 0 };
        await using var lab = NewBuilder(new StringWriter()).Build();

        await using var web = await DashboardWebApp.StartAsync(lab, new TelemetryStore(options), options, ct).WaitAsync(Bound, ct);

        var addresses = web.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        var address = Assert.Single(addresses);
        Assert.Equal("127.0.0.1", new Uri(address).Host);
    }

    [Fact]
    public async Task Request_ToTheDashboard_MakesNoAspNetCoreSpan()
    {
        var ct = TestContext.Current.CancellationToken;
        var builder = NewBuilder(new StringWriter());
        await using var app = builder.Build();
        await app.StartAsync(ct).WaitAsync(Bound, ct);
        using var client = DashboardWebKit.Client(app);
        // Other tests' web apps make spans in this process too: ours are told apart by a trace id only this test sends.
        var traceId = ActivityTraceId.CreateRandom();
        var seen = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = activity =>
            {
                if (activity.TraceId == traceId)
                    lock (seen) seen.Add(activity);
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var request = new HttpRequestMessage(HttpMethod.Get, "api/resources");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");

        using var response = await client.SendAsync(request, ct).WaitAsync(Bound, ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        lock (seen) Assert.Empty(seen);
    }
}
