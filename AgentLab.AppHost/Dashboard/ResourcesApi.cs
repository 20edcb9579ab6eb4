using AgentLab.AppHost.Hosting;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace AgentLab.AppHost.Dashboard;

/// <summary>A resource as the dashboard shows it (<c>GET /api/resources</c>).</summary>
public sealed record ResourceDto(
    string Name,
    ResourceKind Kind,
    ResourceState State,
    ResourceHealth Health,
    string? Endpoint,
    int Restarts,
    DateTimeOffset? StartedAt,
    double? UptimeSeconds,
    int? ProcessId,
    string? Message,
    IReadOnlyList<ResourceAction> Actions);

/// <summary>The health column: from the state, since the runner's health check is what moves Running ⇄ Unhealthy.</summary>
public enum ResourceHealth
{
    Healthy,
    Unhealthy,
    Unknown,
}

/// <summary><c>/api/resources</c>: the lab's resources, and stop / start / restart.</summary>
public static class ResourcesApi
{
    /// <summary>How long an action's answer waits for it (a quick stop answers "exited"; a slow one answers while it goes on).</summary>
    internal static TimeSpan ActionWait { get; set; } = TimeSpan.FromSeconds(3);

    public static RouteGroupBuilder MapResourcesApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/resources");
        group.MapGet("", List);
        group.MapPost("/{name}/stop", StopAsync);
        group.MapPost("/{name}/start", StartAsync);
        group.MapPost("/{name}/restart", RestartAsync);
        return group;
    }

    public static JsonHttpResult<IReadOnlyList<ResourceDto>> List(LabApp lab) =>
        TypedResults.Json<IReadOnlyList<ResourceDto>>([.. lab.Resources.Select(r => ToDto(lab, r, DateTimeOffset.UtcNow))], DashboardJson.Options);

    public static Task<Results<JsonHttpResult<ResourceDto>, ProblemHttpResult>> StopAsync(string name, LabApp lab, ILoggerFactory logs) =>
        ActAsync(lab, name, ResourceAction.Stop, lab.StopResourceAsync, logs);

    public static Task<Results<JsonHttpResult<ResourceDto>, ProblemHttpResult>> StartAsync(string name, LabApp lab, ILoggerFactory logs) =>
        ActAsync(lab, name, ResourceAction.Start, lab.StartResourceAsync, logs);

    public static Task<Results<JsonHttpResult<ResourceDto>, ProblemHttpResult>> RestartAsync(string name, LabApp lab, ILoggerFactory logs) =>
        ActAsync(lab, name, ResourceAction.Restart, lab.RestartResourceAsync, logs);

    private static async Task<Results<JsonHttpResult<ResourceDto>, ProblemHttpResult>> ActAsync(
        LabApp lab, string name, ResourceAction action, Func<string, Task> act, ILoggerFactory logs)
    {
        if (Find(lab, name) is not { } resource)
            return NotFound(name);
        if (lab.WhyNot(resource, action) is { } why)
            return NotAvailable(action, why);

        // Not tied to the request: a stop the user asked for finishes even if the tab closes.
        var running = act(resource.Name);
        try
        {
            await running.WaitAsync(ActionWait).ConfigureAwait(false);
        }
        catch (ResourceActionException ex)
        {
            return NotAvailable(action, ex.Message); // the state moved between the check and the gate
        }
        catch (TimeoutException)
        {
            // Still stopping (within the stop grace): answer now with the state so far; report a late failure in the log.
            var logger = logs.CreateLogger(typeof(ResourcesApi).FullName!);
            _ = running.ContinueWith(t => logger.DashboardActionFailed(t.Exception!.GetBaseException(), action.ToString(), resource.Name),
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
        return TypedResults.Json(ToDto(lab, resource, DateTimeOffset.UtcNow), DashboardJson.Options, statusCode: StatusCodes.Status202Accepted);
    }

    internal static LabResource? Find(LabApp lab, string name) =>
        lab.Resources.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase));

    internal static ProblemHttpResult NotFound(string name) =>
        Problems.Create(StatusCodes.Status404NotFound, "resource_not_found", "Resource not found",
            $"The lab has no resource named '{Shorten(name)}'. GET /api/resources lists them.");

    private static ProblemHttpResult NotAvailable(ResourceAction action, string why) =>
        Problems.Create(StatusCodes.Status409Conflict, "action_not_available", $"Cannot {action.ToString().ToLowerInvariant()} now", why);

    public static ResourceDto ToDto(LabApp lab, LabResource resource, DateTimeOffset now)
    {
        var state = resource.State;
        var hasProcess = resource.Kind != ResourceKind.External
            && state is ResourceState.Starting or ResourceState.Running or ResourceState.Unhealthy;
        var startedAt = resource.Kind != ResourceKind.External && state is ResourceState.Running or ResourceState.Unhealthy
            ? resource.StartedAt
            : null;
        return new ResourceDto(
            resource.Name,
            resource.Kind,
            state,
            state switch
            {
                ResourceState.Running => ResourceHealth.Healthy,
                ResourceState.Unhealthy => ResourceHealth.Unhealthy,
                _ => ResourceHealth.Unknown,
            },
            // Only our own loopback endpoints: an external resource's address lives in its connection string (maybe with a password).
            resource.Kind == ResourceKind.External ? null : resource.Endpoint?.GetLeftPart(UriPartial.Authority),
            resource.RestartCount,
            startedAt,
            startedAt is { } since ? Math.Max(0, Math.Round((now - since).TotalSeconds, 1)) : null,
            hasProcess ? resource.ProcessId : null,
            Redact(resource.Message),
            lab.AvailableActions(resource));
    }

    /// <summary>A failure message can quote a connection string: its password stays on the AppHost's console.</summary>
    internal static string? Redact(string? message) => message is null ? null : Secrets.RedactPasswords(message);

    private static string Shorten(string text) => text.Length <= 100 ? text : text[..100] + "...";
}
