using System.Text.Json;
using AgentLab.Backend.Data;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Health;

/// <summary>
/// <c>/api/v1/health</c> (the Backend is alive), <c>/api/v1/health/detailed</c> (every component, with latency) and
/// <c>/api/v1/ready</c> (the database answers with its schema migrated, and LabService answers, so executions can run).
/// Probes are bounded (<c>LabService:HealthTimeoutSeconds</c>, <c>Database:ProbeTimeoutMilliseconds</c>) so that none
/// of them can hang.
/// </summary>
public static class HealthApi
{
    public const string Healthy = "healthy";
    public const string Degraded = "degraded";
    public const string Unhealthy = "unhealthy";
    public const string Unknown = "unknown";

    public static RouteGroupBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Health");

        group.MapGet("/health", GetHealth)
            .WithName("GetHealth")
            .WithSummary("Liveness of the Backend itself")
            .AllowAnonymous()
            .Produces<StatusReport>(StatusCodes.Status200OK);

        group.MapGet("/health/detailed", GetDetailedHealthAsync)
            .WithName("GetDetailedHealth")
            .WithSummary("Health of every component, with latency")
            .WithDescription("Always answers 200; read \"status\" (the worst component status). Use /api/v1/ready as a gate.")
            .Produces<DetailedHealthReport>(StatusCodes.Status200OK);

        group.MapGet("/ready", GetReadyAsync)
            .WithName("GetReady")
            .WithSummary("Readiness: the database (migrated) and LabService answer")
            .AllowAnonymous()
            .Produces<StatusReport>(StatusCodes.Status200OK)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        return group;
    }

    public static JsonHttpResult<StatusReport> GetHealth() =>
        TypedResults.Json(new StatusReport { Status = Healthy }, BackendJsonContext.Wire.StatusReport);

    public static async Task<JsonHttpResult<DetailedHealthReport>> GetDetailedHealthAsync(
        LabServiceReadClient lab, IOptions<LabServiceOptions> options, DatabaseHealth database, TimeProvider time,
        ILoggerFactory loggers, Security.RateLimiting.AgentLabRateLimiter limits, CancellationToken ct)
    {
        var labCheck = CheckLabServiceAsync(lab, options.Value, time, loggers, ct);
        var migration = await database.WaitForMigrationStepAsync(database.ProbeTimeout, ct);
        var probe = await database.CheckAsync(ct);
        var (labService, modelServer, serverKind) = await labCheck;

        var databaseHealth = new ComponentHealth
        {
            Status = probe.Answered ? Healthy : Unhealthy,
            LatencyMs = probe.LatencyMs,
            Detail = probe.Detail,
        };
        // Counting in each replica while Redis is away still limits, but only per replica: degraded.
        var limitState = limits.State;
        var rateLimits = new ComponentHealth { Status = limitState.Mode == Security.RateLimiting.RateLimitState.Fallback ? Degraded : Healthy, Detail = limitState.Detail };
        var migrations = new MigrationHealth
        {
            Status = migration.Status,
            Detail = migration.Detail,
            AppliedMigrations = migration.AppliedMigrations,
            ChangedAt = migration.At,
        };
        var report = new DetailedHealthReport
        {
            Status = Worst(labService.Status, modelServer.Status, databaseHealth.Status, MigrationStatus(migration.Status), rateLimits.Status),
            ModelServer = serverKind,
            Components = new() { ["labservice"] = labService, ["model_server"] = modelServer, ["database"] = databaseHealth, ["rate_limits"] = rateLimits },
            Migrations = migrations,
        };
        return TypedResults.Json(report, BackendJsonContext.Wire.DetailedHealthReport);
    }

    /// <summary>
    /// Ready when the database answers with its schema migrated and LabService answers; otherwise 503 <c>not_ready</c>
    /// naming each missing component (<c>missing</c>) and why (<c>detail</c>). Both checks run at once, each bounded.
    /// </summary>
    public static async Task<Results<JsonHttpResult<StatusReport>, ProblemHttpResult>> GetReadyAsync(
        LabServiceReadClient lab, IOptions<LabServiceOptions> options, DatabaseHealth database, CancellationToken ct)
    {
        var labCheck = LabServiceNotReadyAsync(lab, options.Value, ct);
        var databaseReason = await DatabaseNotReadyAsync(database, ct);
        var labReason = await labCheck;

        var missing = new List<string>();
        var reasons = new List<string>();
        if (databaseReason is not null)
        {
            missing.Add("database");
            reasons.Add(databaseReason);
        }
        if (labReason is not null)
        {
            missing.Add("labservice");
            reasons.Add(labReason);
        }
        if (missing.Count == 0)
            return TypedResults.Json(new StatusReport { Status = "ready" }, BackendJsonContext.Wire.StatusReport);

        return Problems.Create(StatusCodes.Status503ServiceUnavailable, "not_ready", "The Backend is not ready",
            $"Missing: {string.Join(", ", missing)}. {string.Join(" ", reasons)}", [new("missing", missing.ToArray())]);
    }

    private static async Task<string?> DatabaseNotReadyAsync(DatabaseHealth database, CancellationToken ct)
    {
        // A Backend that has just started is usually still checking its schema: wait for that (briefly) rather than
        // answering "not ready" to the first probe of an orchestrator.
        var migration = await database.WaitForMigrationStepAsync(database.ProbeTimeout, ct);
        if (migration.Status != DatabaseState.Ready)
            return $"Database: the migration step is {migration.Status}: {migration.Detail}";
        var probe = await database.CheckAsync(ct);
        return probe.Answered ? null : $"Database: {probe.Detail}";
    }

    private static async Task<string?> LabServiceNotReadyAsync(LabServiceReadClient lab, LabServiceOptions options, CancellationToken ct)
    {
        try
        {
            var answer = await lab.GetHealthAsync(TimeSpan.FromSeconds(options.HealthTimeoutSeconds), ct);
            // LabService answers 503 only when it is itself unhealthy (a missing model server is just "degraded").
            return answer.StatusCode >= StatusCodes.Status500InternalServerError
                ? $"LabService reports itself unhealthy (its /health answered {answer.StatusCode}); see its logs."
                : null;
        }
        catch (LabServiceException ex) when (ex is LabServiceUnavailableException or LabServiceTimeoutException or LabServiceProblemException)
        {
            return Reason(ex, options);
        }
    }

    private static async Task<(ComponentHealth LabService, ComponentHealth ModelServer, string ServerKind)> CheckLabServiceAsync(
        LabServiceReadClient lab, LabServiceOptions options, TimeProvider time, ILoggerFactory loggers, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        try
        {
            var answer = await lab.GetHealthAsync(TimeSpan.FromSeconds(options.HealthTimeoutSeconds), ct);
            var latencyMs = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 2);
            return FromAnswer(answer, latencyMs);
        }
        catch (LabServiceException ex) when (ex is LabServiceUnavailableException or LabServiceTimeoutException)
        {
            var reason = Reason(ex, options);
            loggers.CreateLogger(typeof(HealthApi)).HealthProbeFailed(reason);
            return (new ComponentHealth { Status = Unhealthy, Detail = reason },
                new ComponentHealth { Status = Unknown, Detail = "Not checked: LabService, which reaches the model server, is not answering." },
                Unknown);
        }
    }

    /// <summary>The migration step as a component status: starting up is degraded; unreachable or failed is unhealthy.</summary>
    public static string MigrationStatus(string status) => status switch
    {
        DatabaseState.Ready => Healthy,
        DatabaseState.Pending or DatabaseState.Migrating => Degraded,
        _ => Unhealthy,
    };

    /// <summary>The worst of the given statuses; an unknown component counts as degraded.</summary>
    public static string Worst(params string[] statuses)
    {
        static int Rank(string s) => s switch { Healthy => 0, Unhealthy => 2, _ => 1 };
        return statuses.Max(Rank) switch { 0 => Healthy, 1 => Degraded, _ => Unhealthy };
    }

    private static (ComponentHealth LabService, ComponentHealth ModelServer, string ServerKind) FromAnswer(
        LabHealthAnswer answer, double latencyMs)
    {
        if (answer.Report is not { } report)
        {
            var status = answer.StatusCode == StatusCodes.Status503ServiceUnavailable ? Unhealthy : Degraded;
            return (new ComponentHealth { Status = status, LatencyMs = latencyMs, Detail = $"LabService answered {answer.StatusCode} without a JSON health report." },
                new ComponentHealth { Status = Unknown, Detail = "LabService did not report on the model server." },
                Unknown);
        }

        // LabService's own checks other than the model server say whether LabService itself is well; the model
        // server is reported as its own component so that a stopped Ollama does not paint LabService red.
        var own = report.Checks.Where(c => c.Key != "model_server").Select(c => Normalize(c.Value.Status)).Append(Healthy).ToArray();
        var labService = new ComponentHealth
        {
            Status = Worst(own),
            LatencyMs = latencyMs,
            Detail = $"LabService answered in {latencyMs} ms (it reports itself {Normalize(report.Status)}).",
        };

        if (!report.Checks.TryGetValue("model_server", out var check))
        {
            return (labService, new ComponentHealth { Status = Unknown, Detail = "LabService did not report on the model server." }, Unknown);
        }

        var modelServer = new ComponentHealth
        {
            Status = Normalize(check.Status),
            LatencyMs = Number(check.Data, "latency_ms") ?? check.DurationMs,
            Detail = check.Description,
        };
        var kind = Text(check.Data, "server_kind") is { Length: > 0 } k ? k : Unknown;
        return (labService, modelServer, kind);
    }

    private static string Normalize(string? status) => status?.ToLowerInvariant() switch
    {
        Healthy => Healthy,
        Degraded => Degraded,
        Unhealthy => Unhealthy,
        _ => Unknown,
    };

    private static double? Number(Dictionary<string, JsonElement>? data, string key) =>
        data is not null && data.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static string? Text(Dictionary<string, JsonElement>? data, string key) =>
        data is not null && data.TryGetValue(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string Reason(LabServiceException ex, LabServiceOptions options) => ex switch
    {
        LabServiceUnavailableException u =>
            $"LabService ({options.BaseAddress}) is unreachable: {u.Reason}. Start it (dotnet run --project AgentLab.LabService) or point services__labservice__http__0 (or LabService:BaseAddress) at it.",
        LabServiceTimeoutException t =>
            $"LabService ({options.BaseAddress}) did not answer its health endpoint within {t.Timeout.TotalSeconds:0.#} s.",
        LabServiceProblemException p =>
            $"LabService ({options.BaseAddress}) answered its health endpoint with {p.Status}: {p.Detail ?? p.Title}",
        _ => ex.Message,
    };
}
