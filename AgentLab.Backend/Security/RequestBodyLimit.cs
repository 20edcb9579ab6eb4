using AgentLab.Backend.Executions;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Security;

/// <summary>
/// One body-size limit for every endpoint (<c>Execution:MaxRequestBodyBytes</c>), answered the same way everywhere:
/// 413 <c>payload_too_large</c> as ProblemDetails, never a bare 413 or a reset connection. A declared Content-Length over
/// the limit is refused before a byte is read; a body without one (chunked) is counted as it is read, under Kestrel
/// (its <c>MaxRequestBodySize</c> is set to the same limit) and under any other server alike.
/// </summary>
public static class RequestBodyLimit
{
    public const string Code = "payload_too_large";

    /// <summary>The 413 problem, naming the limit; <paramref name="advice"/> says what to send instead.</summary>
    public static ProblemHttpResult Problem(long limit, string advice = "Send a smaller body.") =>
        Problems.Create(StatusCodes.Status413PayloadTooLarge, Code, "The request body is too large",
            $"The body may be at most {limit} bytes here. {advice}", [new("limit_bytes", limit)]);

    /// <summary>Kestrel's own limit, set to the same number, so a body over it is cut off at the socket too.</summary>
    public static IServiceCollection AddRequestBodyLimit(this IServiceCollection services)
    {
        services.AddOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>()
            .Configure<IOptions<ExecutionOptions>>((kestrel, execution) => kestrel.Limits.MaxRequestBodySize = execution.Value.MaxRequestBodyBytes);
        return services;
    }

    public static IApplicationBuilder UseRequestBodyLimit(this IApplicationBuilder app) =>
        app.Use(next => context => InvokeAsync(context, next));

    private static async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        long limit = context.RequestServices.GetRequiredService<IOptions<ExecutionOptions>>().Value.MaxRequestBodyBytes;
        var request = context.Request;
        if (request.ContentLength > limit)
        {
            await RefuseAsync(context, limit);
            return;
        }

        // A body of unknown length (chunked, or an HTTP/2 stream) is counted as it is read. Not an upgrade (a
        // WebSocket): its frames do not come through Request.Body, and Streams:MaxClientMessageBytes bounds them.
        CountingBody? counted = null;
        var features = context.Features;
        if (request.ContentLength is null
            && (features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? request.Headers.TransferEncoding.Count > 0)
            && features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>() is not { IsUpgradableRequest: true })
        {
            request.Body = counted = new CountingBody(request.Body, limit);
        }
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge && !context.Response.HasStarted)
        {
            await RefuseAsync(context, limit);
            return;
        }
        // Minimal APIs read a bound body themselves and swallow the read's failure (an IOException) without an
        // answer: the count tells that the body was over the limit.
        if (counted is { Exceeded: true } && !context.Response.HasStarted)
            await RefuseAsync(context, limit);
    }

    private static async Task RefuseAsync(HttpContext context, long limit)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RequestBodyLimit).FullName!);
        logger.BodyTooLarge(context.Request.Method, context.Request.Path, limit, context.Request.ContentLength);
        context.Response.Clear();
        // The unread rest of the body cannot be trusted to be drained cheaply: close the connection after the answer.
        if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol))
            context.Response.Headers.Connection = "close";
        await Problem(limit).ExecuteAsync(context);
    }

    /// <summary>A request body that throws, as Kestrel does, once more than the limit has been read.</summary>
    private sealed class CountingBody(Stream inner, long limit) : Stream
    {
        private long _read;

        public bool Exceeded { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        private int Count(int read)
        {
            _read += read;
            if (_read > limit)
            {
                Exceeded = true;
                throw new BadHttpRequestException($"The request body is over the {limit}-byte limit.", StatusCodes.Status413PayloadTooLarge);
            }
            return read;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
