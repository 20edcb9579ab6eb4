using AgentLab.Backend.Data;
using AgentLab.Backend.Lab;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Errors;

/// <summary>
/// The one place where failures of the Backend's downstreams become problem replies: LabService's problems pass
/// through with their code, detail, extensions and Retry-After; an unreachable LabService is 503
/// <c>lab_unavailable</c>; a LabService that does not answer in time is 504 <c>lab_timeout</c>; a database that is
/// down, paused or not migrated yet is 503 <c>db_unavailable</c> (and is reported to <see cref="DatabaseHealth"/>).
/// </summary>
public sealed class BackendExceptionHandler(
    IOptions<LabServiceOptions> labOptions, IOptions<DatabaseOptions> databaseOptions, DatabaseHealth database,
    ILogger<BackendExceptionHandler> logger)
    : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        // A client that went away needs no answer; the host records it as 499.
        if (exception is OperationCanceledException && httpContext.RequestAborted.IsCancellationRequested)
            return false;
        if (httpContext.Response.HasStarted)
            return false;

        var (problem, retryAfter) = Map(httpContext, exception);
        if (retryAfter is not null)
            httpContext.Response.Headers.RetryAfter = retryAfter;
        await problem.ExecuteAsync(httpContext);
        return true;
    }

    private (ProblemHttpResult Problem, string? RetryAfter) Map(HttpContext httpContext, Exception exception)
    {
        switch (exception)
        {
            case LabServiceProblemException p:
            {
                logger.LabServiceProblem(p.ExecutionId, p.Status, p.Code);
                var extensions = p.Extensions.Select(e => new KeyValuePair<string, object?>(e.Key, e.Value)).ToList();
                AddExecutionId(extensions, p);
                return (Problems.Create(p.Status, p.Code, p.Title, p.Detail, extensions), p.RetryAfter);
            }

            case LabServiceUnavailableException u:
            {
                logger.LabServiceUnreachable(u.ExecutionId, u.Reason);
                var options = labOptions.Value;
                var extensions = new List<KeyValuePair<string, object?>>();
                AddExecutionId(extensions, u);
                var problem = Problems.Create(StatusCodes.Status503ServiceUnavailable, "lab_unavailable",
                    "LabService is unavailable",
                    $"The Backend could not reach LabService ({options.BaseAddress}): {u.Reason}. Check that LabService is running " +
                    "(dotnet run --project AgentLab.LabService, or the AppHost) and that services__labservice__http__0 or " +
                    "LabService:BaseAddress points at it, then retry.",
                    extensions);
                return (problem, options.UnavailableRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            case LabServiceTimeoutException t:
            {
                logger.LabServiceTimedOut(t.ExecutionId, t.Timeout.TotalSeconds);
                var extensions = new List<KeyValuePair<string, object?>>();
                AddExecutionId(extensions, t);
                return (Problems.Create(StatusCodes.Status504GatewayTimeout, "lab_timeout", "LabService did not answer in time",
                    $"No answer from LabService within {t.Timeout.TotalSeconds:0.#} s. Raise parameters.timeout_seconds, " +
                    "ask for fewer tokens (parameters.max_tokens), or check whether the model server is overloaded.",
                    extensions), null);
            }

            case var wrapped when Find<DatabaseUnavailableException>(wrapped) is { } refused:
                logger.DatabaseRequestRefused(httpContext.Request.Method, httpContext.Request.Path, refused.Reason);
                return DatabaseUnavailable(refused.Reason);

            case var failed when FromDatabase(failed) && DatabaseErrors.IsUnavailable(failed):
            {
                database.ReportFailure(failed);
                var reason = $"PostgreSQL is unreachable ({DatabaseErrors.Describe(failed)}).";
                logger.DatabaseRequestFailed(httpContext.Request.Method, httpContext.Request.Path, reason);
                return DatabaseUnavailable(reason);
            }

            case BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }:
                return (Security.RequestBodyLimit.Problem(
                    httpContext.RequestServices.GetRequiredService<IOptions<Executions.ExecutionOptions>>().Value.MaxRequestBodyBytes), null);

            case BadHttpRequestException bad:
                return (Problems.Create(bad.StatusCode, "bad_request", "The request could not be read", bad.Message), null);

            default:
                logger.UnhandledError(exception, httpContext.Request.Method, httpContext.Request.Path);
                return (Problems.Create(StatusCodes.Status500InternalServerError, "internal_error", "Internal error",
                    "The Backend failed unexpectedly; this is a bug. Report it with the trace_id."), null);
        }
    }

    private (ProblemHttpResult Problem, string? RetryAfter) DatabaseUnavailable(string reason)
    {
        var retryAfter = databaseOptions.Value.RetryAfterSeconds;
        var problem = Problems.Create(StatusCodes.Status503ServiceUnavailable, "db_unavailable", "The database is unavailable",
            $"The Backend could not use its database: {reason} The request was not carried out. Check that PostgreSQL is " +
            "running and that ConnectionStrings:agentlabdb points at it; the Backend reconnects by itself when it answers. " +
            $"Retry in {retryAfter} s (with the same Idempotency-Key, a retry never runs an execution twice).");
        return (problem, retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// True for failures raised by the database driver or EF Core's retry strategy; an I/O error or a timeout of some
    /// other client (an HTTP call) must not be reported as a database outage.
    /// </summary>
    private static bool FromDatabase(Exception exception) =>
        Find<Npgsql.NpgsqlException>(exception) is not null
        || Find<Microsoft.EntityFrameworkCore.Storage.RetryLimitExceededException>(exception) is not null;

    /// <summary>The exception or the first of its inner exceptions that is a <typeparamref name="T"/> (EF Core wraps some).</summary>
    private static T? Find<T>(Exception exception) where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found)
                return found;
        }
        return null;
    }

    private static void AddExecutionId(List<KeyValuePair<string, object?>> extensions, LabServiceException ex)
    {
        if (ex.ExecutionId is { } id)
            extensions.Add(new("execution_id", id));
    }
}
