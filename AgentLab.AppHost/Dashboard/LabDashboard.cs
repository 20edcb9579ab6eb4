using System.Globalization;
using System.Security.Cryptography;
using AgentLab.AppHost.Dashboard.Telemetry;
using AgentLab.AppHost.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AgentLab.AppHost.Dashboard;

/// <summary>
/// The dashboard and the OTLP receiver that feeds it, both in the AppHost's process (which runs no OpenTelemetry
/// of its own, so nothing here is traced back into itself). Started before any resource, so the services get the
/// receiver's address; stopped after every resource, so their last export on shutdown still arrives.
/// </summary>
public sealed class LabDashboard(DashboardOptions options) : IAsyncDisposable
{
    private WebApplication? _receiver;
    private WebApplication? _web;

    // Configured, or made for this run: only the services this AppHost starts know it.
    private readonly string _otlpApiKey = string.IsNullOrEmpty(options.OtlpApiKey)
        ? RandomNumberGenerator.GetHexString(32, lowercase: true)
        : options.OtlpApiKey;

    public DashboardOptions Options { get; } = options;

    /// <summary>Everything the services exported, bounded by the options.</summary>
    public TelemetryStore Telemetry { get; } = new(options);

    /// <summary>Where the dashboard answers, once started (<c>http://localhost:18888/</c>).</summary>
    public Uri? Url { get; private set; }

    /// <summary>The OTLP/HTTP base address given to the services (<c>http://127.0.0.1:18890</c>), once started.</summary>
    public Uri? OtlpEndpoint { get; private set; }

    /// <summary>Checks the options, then starts the receiver and the dashboard; a port in use is a <see cref="LabStartupException"/>.</summary>
    public async Task StartAsync(LabApp app, CancellationToken ct)
    {
        await StartReceiverAsync(ct).ConfigureAwait(false);
        _web = await StartOrExplainAsync(() => DashboardWebApp.StartAsync(app, Telemetry, Options, ct), Options.Port, "Port")
            .ConfigureAwait(false);
        var listening = ListeningAt(_web);
        // The address people type: localhost for loopback, else the configured host name or address.
        var host = Options.IsLoopback ? "localhost" : Options.Address;
        Url = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{host}:{listening.Port}/"));
    }

    /// <summary>The OTLP receiver alone (the gateway benchmark measures export costs with it); <see cref="StartAsync"/> calls it.</summary>
    public async Task StartReceiverAsync(CancellationToken ct)
    {
        if (_receiver is not null)
            return;
        Validate(Options);
        _receiver = await StartOrExplainAsync(() => OtlpReceiver.StartAsync(Telemetry, Options.OtlpPort, _otlpApiKey, ct), Options.OtlpPort, "OtlpPort")
            .ConfigureAwait(false);
        OtlpEndpoint = ListeningAt(_receiver);
    }

    /// <summary>
    /// What every service gets so its telemetry reaches the dashboard: the receiver's address, its API key, and export
    /// delays short enough that a trace shows up while you look (the SDK's defaults are 5 s for spans and logs, 60 s for
    /// metrics).
    /// </summary>
    public IReadOnlyDictionary<string, string> ServiceEnvironment() => OtlpEndpoint is not { } endpoint
        ? new Dictionary<string, string>()
        : new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint.GetLeftPart(UriPartial.Authority),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_HEADERS"] = $"{OtlpReceiver.ApiKeyHeader}={_otlpApiKey}",
            ["OTEL_BSP_SCHEDULE_DELAY"] = Options.ExportDelayMilliseconds.ToString(CultureInfo.InvariantCulture),
            ["OTEL_BLRP_SCHEDULE_DELAY"] = Options.ExportDelayMilliseconds.ToString(CultureInfo.InvariantCulture),
            ["OTEL_METRIC_EXPORT_INTERVAL"] = Options.MetricExportIntervalMilliseconds.ToString(CultureInfo.InvariantCulture),
        };

    public async ValueTask DisposeAsync()
    {
        if (_web is not null)
            await _web.DisposeAsync().ConfigureAwait(false);
        if (_receiver is not null)
            await _receiver.DisposeAsync().ConfigureAwait(false);
        _web = _receiver = null;
    }

    internal static void Validate(DashboardOptions options)
    {
        System.ComponentModel.DataAnnotations.Validator.ValidateObject(options, new(options), validateAllProperties: true);
        if (!options.IsLoopback && string.IsNullOrWhiteSpace(options.AccessToken))
        {
            throw new LabStartupException(
                $"the dashboard would listen on {options.Address}, which other machines can reach, without an access token. " +
                "Set Dashboard:AccessToken (at least 16 characters, e.g. `openssl rand -hex 16`), or keep the default " +
                "Dashboard:Address=127.0.0.1.");
        }
        if (options.AccessToken is { Length: > 0 and < 16 })
            throw new LabStartupException("Dashboard:AccessToken is shorter than 16 characters: use a random one, e.g. `openssl rand -hex 16`.");
        if (options.OtlpApiKey is { Length: > 0 } key && (key.Length < 16 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new LabStartupException(
                "Dashboard:OtlpApiKey must be at least 16 letters, digits, '-', '_' or '.' (it travels in OTEL_EXPORTER_OTLP_HEADERS, " +
                "where ',' and '=' separate headers): use a random one, e.g. `openssl rand -hex 16`, or leave it unset for a key per run.");
        }
    }

    private static async Task<WebApplication> StartOrExplainAsync(Func<Task<WebApplication>> start, int port, string key)
    {
        try
        {
            return await start().ConfigureAwait(false);
        }
        catch (IOException ex) when (ex.InnerException is System.Net.Sockets.SocketException or null)
        {
            throw new LabStartupException(
                $"the dashboard could not listen on port {port.ToString(CultureInfo.InvariantCulture)}: {ex.Message} " +
                $"(another AgentLab running?). Stop it, or choose another port with --Dashboard:{key}=<port> (0 = any free port).", ex);
        }
    }

    private static Uri ListeningAt(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        return new Uri(addresses.First());
    }
}
