using System.Collections;
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry;

namespace AgentLab.ServiceDefaults;

/// <summary>
/// The execution ID that ties a Backend request, its LabService call and every model call together. It lives in the
/// W3C baggage of the current <see cref="Activity"/>, so it flows with the async context, is sent by every HttpClient
/// (<c>baggage: agentlab.execution_id = ...</c>; .NET 10's default propagator is W3C and sends baggage, so no extra
/// handler is needed), is read back by ASP.NET Core on the other side (it extracts baggage when a traceparent came
/// with it), is stamped as a tag on every span started under it, and appears in the scope of every log written while
/// handling the request.
/// </summary>
public static class AgentLabExecution
{
    /// <summary>Baggage key, span attribute name and log scope key.</summary>
    public const string ExecutionIdKey = "agentlab.execution_id";

    /// <summary>Baggage key and span attribute: <c>simple</c> or <c>orchestrator</c>, travelling with the ID.</summary>
    public const string ExecutionTypeKey = "agentlab.execution_type";

    /// <summary>Span attribute of a graph node's span and of the model calls made inside it (<c>analyzer</c>, ...).</summary>
    public const string NodeKey = "agentlab.node";

    /// <summary>The execution ID of the current operation, read from baggage, if any.</summary>
    public static string? CurrentId => Activity.Current?.GetBaggageItem(ExecutionIdKey);

    /// <summary>
    /// Makes <paramref name="executionId"/> the execution ID of the current flow: baggage and tag on the current
    /// activity, so later spans, outgoing HTTP calls and logs (inside a request) carry it.
    /// </summary>
    /// <remarks>
    /// Inside an HTTP request nothing else is needed: the request's log scope reads the ID when a log is written.
    /// Outside a request (a background worker), there may be no current activity: then a plain, unexported activity
    /// is started to carry the baggage for the rest of this async flow; wrap the work in
    /// <see cref="BeginLogScope"/> so its logs carry the ID too.
    /// </remarks>
    public static void SetCurrentId(Guid executionId, string? executionType = null)
    {
        var id = executionId.ToString();
        var activity = Activity.Current ?? new Activity("agentlab.execution").Start();
        activity.SetBaggage(ExecutionIdKey, id);
        activity.SetTag(ExecutionIdKey, id);
        if (executionType is not null)
        {
            activity.SetBaggage(ExecutionTypeKey, executionType);
            activity.SetTag(ExecutionTypeKey, executionType);
        }
    }

    /// <summary>
    /// For a service at the system's edge (the Backend): ignores an <c>agentlab.execution_id</c> that a caller sent as
    /// baggage. Internal services (LabService) keep trusting the one their caller propagates.
    /// </summary>
    public static IApplicationBuilder UseExecutionIdBoundary(this IApplicationBuilder app) =>
        app.UseMiddleware<ExecutionIdBoundaryMiddleware>();

    /// <summary>
    /// Opens a log scope that carries <c>agentlab.execution_id</c> whenever one is current at the time a log is
    /// written. Requests get it automatically; use it for work that runs outside a request.
    /// </summary>
    public static IDisposable? BeginLogScope(ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        return logger.BeginScope(ExecutionLogScope.Instance);
    }
}

/// <summary>
/// A log scope whose content is read when a log is written, not when the scope opens: a handler that calls
/// <see cref="AgentLabExecution.SetCurrentId"/> mid-request gets the ID on its later logs without a new scope.
/// </summary>
internal sealed class ExecutionLogScope : IReadOnlyList<KeyValuePair<string, object?>>
{
    public static readonly ExecutionLogScope Instance = new();

    public int Count => AgentLabExecution.CurrentId is null ? 0 : 1;

    public KeyValuePair<string, object?> this[int index] =>
        index == 0 && AgentLabExecution.CurrentId is { } id
            ? new(AgentLabExecution.ExecutionIdKey, id)
            : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        if (AgentLabExecution.CurrentId is { } id)
            yield return new(AgentLabExecution.ExecutionIdKey, id);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() =>
        AgentLabExecution.CurrentId is { } id ? $"{AgentLabExecution.ExecutionIdKey}:{id}" : string.Empty;
}

/// <summary>
/// At the system's edge an execution ID is ours to assign: drops one a caller sent as baggage (ASP.NET Core accepts
/// incoming baggage whenever a traceparent comes with it), so it cannot reach our problems, logs or spans.
/// </summary>
internal sealed class ExecutionIdBoundaryMiddleware(RequestDelegate next)
{
    private static readonly string[] OursToAssign = [AgentLabExecution.ExecutionIdKey, AgentLabExecution.ExecutionTypeKey];

    public Task InvokeAsync(HttpContext context)
    {
        if (Activity.Current is { } activity)
        {
            foreach (var key in OursToAssign)
            {
                if (activity.GetBaggageItem(key) is null)
                    continue;
                activity.SetBaggage(key, null);
                activity.SetTag(key, null);   // stamped on the server span when it started
            }
        }
        return next(context);
    }
}

/// <summary>Opens the execution log scope around every request.</summary>
internal sealed class ExecutionLogScopeMiddleware(RequestDelegate next, ILoggerFactory loggers)
{
    private readonly ILogger logger = loggers.CreateLogger("AgentLab.Execution");

    public async Task InvokeAsync(HttpContext context)
    {
        // Scopes live in the factory's shared scope provider, so every logger in the request sees this one.
        using (logger.BeginScope(ExecutionLogScope.Instance))
            await next(context);
    }
}

/// <summary>
/// Puts <c>agentlab.execution_id</c> on each OpenTelemetry log record as it is written. The request's log scope cannot
/// do it for OTLP: the batch exporter keeps the scope object and enumerates it later on its own thread, where no
/// execution is current (seen: no exported log carried the ID). Runs before the exporter's processor.
/// </summary>
internal sealed class ExecutionIdLogProcessor : BaseProcessor<OpenTelemetry.Logs.LogRecord>
{
    public override void OnEnd(OpenTelemetry.Logs.LogRecord data)
    {
        if (AgentLabExecution.CurrentId is not { } id)
            return;
        var attributes = data.Attributes;
        if (attributes is not null)
        {
            foreach (var attribute in attributes)
            {
                if (attribute.Key == AgentLabExecution.ExecutionIdKey)
                    return;
            }
        }
        var withId = attributes is null ? new List<KeyValuePair<string, object?>>(1) : new List<KeyValuePair<string, object?>>(attributes);
        withId.Add(new(AgentLabExecution.ExecutionIdKey, id));
        data.Attributes = withId;
    }
}

/// <summary>Stamps <c>agentlab.execution_id</c> and <c>agentlab.execution_type</c> on every span started while they are in baggage.</summary>
internal sealed class ExecutionIdProcessor : BaseProcessor<Activity>
{
    public override void OnStart(Activity data)
    {
        if (data.GetBaggageItem(AgentLabExecution.ExecutionIdKey) is not { } id)
            return;
        data.SetTag(AgentLabExecution.ExecutionIdKey, id);
        if (data.GetBaggageItem(AgentLabExecution.ExecutionTypeKey) is { } type)
            data.SetTag(AgentLabExecution.ExecutionTypeKey, type);
    }
}
