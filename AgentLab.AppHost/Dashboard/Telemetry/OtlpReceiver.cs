using System.IO.Compression;
using AgentLab.AppHost.Dashboard.Telemetry.Otlp;
using AgentLab.ServiceDefaults;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace AgentLab.AppHost.Dashboard.Telemetry;

/// <summary>
/// OTLP/HTTP with protobuf bodies (what the OpenTelemetry SDKs send with <c>OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf</c>):
/// <c>POST /v1/traces</c>, <c>/v1/logs</c>, <c>/v1/metrics</c> on 127.0.0.1:OtlpPort, into the <see cref="TelemetryStore"/>.
/// Loopback only: the services run on this machine, and telemetry carries execution ids and log text. Every export
/// carries the run's API key in <c>x-otlp-api-key</c>, so another local user cannot post fake telemetry.
/// </summary>
public static class OtlpReceiver
{
    /// <summary>Largest request body, compressed or not (the exporters batch at most 512 spans or records per request).</summary>
    public const int MaxBodyBytes = 32 * 1024 * 1024;

    public const string ProtobufContentType = "application/x-protobuf";

    /// <summary>The header that carries the API key (Aspire's dashboard uses the same).</summary>
    public const string ApiKeyHeader = "x-otlp-api-key";

    public static async Task<WebApplication> StartAsync(TelemetryStore store, int port, string apiKey, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(apiKey);
        var builder = DashboardHosting.CreateBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxBodyBytes);
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton(new OtlpApiKey(apiKey));
        builder.Services.AddProblemDetails();
        var app = builder.Build();
        app.MapOtlp();
        await app.StartAsync(ct).ConfigureAwait(false);
        return app;
    }

    /// <summary>Maps the three OTLP/HTTP export routes (the store and the <see cref="OtlpApiKey"/> come from DI).</summary>
    public static IEndpointRouteBuilder MapOtlp(this IEndpointRouteBuilder endpoints)
    {
        var exports = endpoints.MapGroup("/v1").AddEndpointFilter(RequireApiKey);
        exports.MapPost("/traces", ExportTracesAsync);
        exports.MapPost("/logs", ExportLogsAsync);
        exports.MapPost("/metrics", ExportMetricsAsync);
        return endpoints;
    }

    private static async ValueTask<object?> RequireApiKey(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var key = context.RequestServices.GetRequiredService<OtlpApiKey>();
        var sent = context.Request.Headers[ApiKeyHeader].ToString();
        if (key.Matches(sent))
            return await next(invocation).ConfigureAwait(false);
        if (key.FirstRefusal())
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OtlpReceiver))
                .OtlpApiKeyRefused(context.Request.Path, sent.Length == 0 ? "no" : "a wrong");
        }
        return Problems.Create(StatusCodes.Status401Unauthorized, "otlp_api_key_required",
            sent.Length == 0 ? $"The OTLP export has no {ApiKeyHeader} header" : $"The OTLP export's {ApiKeyHeader} is not this AppHost's",
            $"Send the key in the {ApiKeyHeader} header. The AppHost gives it to the services it starts in OTEL_EXPORTER_OTLP_HEADERS; " +
            "to export from another process, set Dashboard:OtlpApiKey and send the same key.");
    }

    public static Task<IResult> ExportTracesAsync(HttpContext context, TelemetryStore store, ILoggerFactory logs) =>
        ExportAsync(context, ExportTraceServiceRequest.Parser, store.Add, "traces", logs);

    public static Task<IResult> ExportLogsAsync(HttpContext context, TelemetryStore store, ILoggerFactory logs) =>
        ExportAsync(context, ExportLogsServiceRequest.Parser, store.Add, "logs", logs);

    public static Task<IResult> ExportMetricsAsync(HttpContext context, TelemetryStore store, ILoggerFactory logs) =>
        ExportAsync(context, ExportMetricsServiceRequest.Parser, store.Add, "metrics", logs);

    private static async Task<IResult> ExportAsync<T>(HttpContext context, MessageParser<T> parser, Action<T> add, string signal,
        ILoggerFactory logs) where T : IMessage<T>
    {
        var request = context.Request;
        if (!IsProtobuf(request.ContentType))
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type",
                "OTLP/HTTP JSON and gRPC are not accepted here",
                "send OTLP/HTTP protobuf: OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
        }
        if (request.ContentLength > MaxBodyBytes)
            return TooLarge();

        byte[] body;
        try
        {
            body = await ReadBodyAsync(request, context.RequestAborted).ConfigureAwait(false);
        }
        catch (BodyTooLargeException)
        {
            return TooLarge();
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return TooLarge();
        }
        catch (InvalidDataException ex)
        {
            logs.CreateLogger(typeof(OtlpReceiver)).OtlpUndecodable(signal, ex.Message);
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_otlp", "The OTLP body is not valid gzip",
                $"Content-Encoding says gzip but the body could not be decompressed: {ex.Message}");
        }
        catch (NotSupportedException ex)
        {
            return Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type",
                "Unsupported Content-Encoding", ex.Message);
        }

        T message;
        try
        {
            // Synchronous decode of a buffered body: Google.Protobuf's parser reads from memory without I/O.
            message = parser.ParseFrom(body);
        }
        catch (InvalidProtocolBufferException ex)
        {
            logs.CreateLogger(typeof(OtlpReceiver)).OtlpUndecodable(signal, ex.Message);
            return Problems.Create(StatusCodes.Status400BadRequest, "invalid_otlp", $"The OTLP {signal} body could not be decoded",
                $"The body is not an OTLP Export{char.ToUpperInvariant(signal[0])}{signal[1..]}ServiceRequest in protobuf: {ex.Message}");
        }
        add(message);
        // An empty Export*ServiceResponse: zero bytes is its valid encoding (no partial_success to report).
        return TypedResults.Bytes(Array.Empty<byte>(), ProtobufContentType);
    }

    private static ProblemHttpResult TooLarge() =>
        Problems.Create(StatusCodes.Status413PayloadTooLarge, "payload_too_large", "The OTLP body is too large",
            $"At most {MaxBodyBytes / (1024 * 1024)} MiB per export (after decompression); export in smaller batches.");

    private static bool IsProtobuf(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media)
        && media.MediaType.Equals(ProtobufContentType, StringComparison.OrdinalIgnoreCase);

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        var encoding = request.Headers.ContentEncoding.ToString().Trim();
        Stream source = request.Body;
        GZipStream? gzip = null;
        if (encoding.Equals("gzip", StringComparison.OrdinalIgnoreCase))
            source = gzip = new GZipStream(request.Body, CompressionMode.Decompress, leaveOpen: true);
        else if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"Content-Encoding '{encoding}' is not supported: send the body as is or gzip it.");

        await using (gzip)
        {
            using var buffer = new MemoryStream(request.ContentLength is { } length and <= MaxBodyBytes ? (int)length : 64 * 1024);
            var chunk = new byte[81920];
            int read;
            while ((read = await source.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                // Also bounds what gzip expands to: a small compressed body can inflate a thousandfold.
                if (buffer.Length + read > MaxBodyBytes)
                    throw new BodyTooLargeException();
                buffer.Write(chunk, 0, read);
            }
            return buffer.ToArray();
        }
    }

    private sealed class BodyTooLargeException : Exception;
}

/// <summary>The receiver's API key, kept as a hash and compared in constant time.</summary>
public sealed class OtlpApiKey(string key)
{
    private readonly HashedSecret _key = new(key);
    private int _refused;

    public bool Matches(string candidate) => _key.Matches(candidate);

    /// <summary>True once: a misconfigured exporter retries every few seconds, and one line says what is wrong.</summary>
    public bool FirstRefusal() => Interlocked.Exchange(ref _refused, 1) == 0;
}
