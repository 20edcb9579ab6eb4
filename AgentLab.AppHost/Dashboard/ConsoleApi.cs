using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using AgentLab.AppHost.Hosting;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace AgentLab.AppHost.Dashboard;

/// <summary>One console line (<c>seq</c> counts from 1 per resource), without terminal escape sequences.</summary>
public sealed record ConsoleLineDto(long Seq, DateTimeOffset Time, string Text, bool IsError)
{
    public static ConsoleLineDto From(LogLine line) => new(line.Sequence, line.Timestamp, TerminalText.Plain(line.Text), line.IsError);
}

/// <summary>Console text as a page shows it: colours and cursor moves (Garnet's banner, say) are for terminals.</summary>
public static partial class TerminalText
{
    /// <summary><paramref name="text"/> without ECMA-48 escape sequences (CSI such as colours, OSC such as titles, and two-character escapes).</summary>
    public static string Plain(string text) => text.Contains('\u001b', StringComparison.Ordinal) ? Escapes().Replace(text, "") : text;

    [GeneratedRegex(@"\x1B(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1B]*(?:\x07|\x1B\\)?|[@-Z\\-_])")]
    private static partial Regex Escapes();
}

/// <summary>The kept console lines of one resource (<c>GET /api/resources/{name}/console</c>).</summary>
public sealed record ConsoleDto(string Resource, int Capacity, IReadOnlyList<ConsoleLineDto> Lines);

/// <summary>
/// <c>/api/resources/{name}/console</c>: the kept lines, and a live tail as server-sent events. The tail reads from
/// the resource's bounded log, never from a queue of its own: a slow browser falls behind in that log, and when
/// lines it had not been sent were overwritten meanwhile it gets <c>event: gap</c> with <c>{"skipped":n}</c>.
/// </summary>
public static class ConsoleApi
{
    public const int DefaultLimit = 1000;
    public const int MaxLimit = 10_000;

    /// <summary>Lines written per read of the log; bounds what one stream holds at a time.</summary>
    private const int Batch = 256;

    /// <summary>A comment this often keeps proxies and the browser from closing a quiet stream.</summary>
    internal static TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    public static RouteGroupBuilder MapConsoleApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/resources/{name}/console");
        group.MapGet("", Get);
        group.MapGet("/stream", StreamAsync);
        return group;
    }

    public static Results<JsonHttpResult<ConsoleDto>, ProblemHttpResult> Get(string name, LabApp lab, long? after, string? q, int? limit)
    {
        if (ResourcesApi.Find(lab, name) is not { } resource)
            return ResourcesApi.NotFound(name);
        if (after is < 0)
            return Invalid("after", "a sequence number, 0 or more (the seq of the newest line you have)");
        if (limit is < 1 or > MaxLimit)
            return Invalid("limit", $"from 1 to {MaxLimit}");

        IEnumerable<LogLine> lines = resource.Log.After(after ?? 0);
        if (!string.IsNullOrEmpty(q))
            lines = lines.Where(l => TerminalText.Plain(l.Text).Contains(q, StringComparison.OrdinalIgnoreCase));
        var kept = lines.ToList();
        var take = limit ?? DefaultLimit;
        // The newest n: what a console shows first.
        var dto = new ConsoleDto(resource.Name, resource.Log.Capacity,
            [.. kept.Skip(Math.Max(0, kept.Count - take)).Select(ConsoleLineDto.From)]);
        return TypedResults.Json(dto, DashboardJson.Options);
    }

    /// <summary><c>text/event-stream</c>: every kept line after <c>after</c> (or <c>Last-Event-ID</c>), then live, until the client leaves.</summary>
    public static async Task StreamAsync(HttpContext context, string name, LabApp lab, IHostApplicationLifetime lifetime, long? after)
    {
        if (ResourcesApi.Find(lab, name) is not { } resource)
        {
            await ResourcesApi.NotFound(name).ExecuteAsync(context).ConfigureAwait(false);
            return;
        }
        var last = Math.Max(0, after ?? 0);
        // A reconnecting EventSource says where it was.
        if (long.TryParse(context.Request.Headers["Last-Event-ID"].ToString(), out var lastEventId) && lastEventId >= 0)
            last = lastEventId;

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        // Ends when the browser goes away or the dashboard stops (a stream must not hold up the lab's shutdown).
        using var end = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var ct = end.Token;
        // Only a wake-up signal (capacity 1): the lines themselves stay in the resource's bounded log.
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void OnLine(LogLine _) => wake.Writer.TryWrite(true);
        resource.Log.LineWritten += OnLine;
        try
        {
            await response.Body.FlushAsync(ct).ConfigureAwait(false); // headers out: the client knows it is connected
            var text = new StringBuilder();
            while (!ct.IsCancellationRequested)
            {
                wake.Reader.TryRead(out _);
                var lines = resource.Log.After(last, Batch);
                if (lines.Count > 0)
                {
                    text.Clear();
                    var skipped = lines[0].Sequence - last - 1;
                    if (skipped > 0 && last > 0)
                        text.Append("event: gap\ndata: {\"skipped\":").Append(skipped).Append("}\n\n");
                    foreach (var line in lines)
                    {
                        text.Append("id: ").Append(line.Sequence).Append("\nevent: line\ndata: ")
                            .Append(JsonSerializer.Serialize(ConsoleLineDto.From(line), DashboardJson.Options)).Append("\n\n");
                    }
                    last = lines[^1].Sequence;
                    await response.WriteAsync(text.ToString(), ct).ConfigureAwait(false);
                    await response.Body.FlushAsync(ct).ConfigureAwait(false);
                    if (lines.Count == Batch)
                        continue; // more kept lines to catch up on
                }

                using var quiet = CancellationTokenSource.CreateLinkedTokenSource(ct);
                quiet.CancelAfter(KeepAliveInterval);
                try
                {
                    await wake.Reader.WaitToReadAsync(quiet.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    await response.WriteAsync(": keep-alive\n\n", ct).ConfigureAwait(false);
                    await response.Body.FlushAsync(ct).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the client left or the dashboard stops
        }
        catch (IOException) when (ct.IsCancellationRequested || context.RequestAborted.IsCancellationRequested)
        {
            // the connection broke while writing
        }
        finally
        {
            resource.Log.LineWritten -= OnLine;
        }
    }

    private static ProblemHttpResult Invalid(string parameter, string expected) =>
        Problems.Create(StatusCodes.Status400BadRequest, "invalid_parameter", $"Invalid {parameter}",
            $"'{parameter}' must be {expected}.");
}
