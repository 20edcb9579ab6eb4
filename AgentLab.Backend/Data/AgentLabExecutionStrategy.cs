using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql.EntityFrameworkCore.PostgreSQL;

namespace AgentLab.Backend.Data;

/// <summary>
/// Npgsql's retrying strategy, except that a try which timed out is not tried again. Retries are for blips that fail
/// fast (a refused or broken connection, a deadlock); a timeout means the server accepts connections but does not
/// answer (paused, overloaded), and repeating it would make one request wait several command timeouts instead of
/// one before it can answer 503 <c>db_unavailable</c>.
/// </summary>
public sealed class AgentLabExecutionStrategy(ExecutionStrategyDependencies dependencies, int maxRetryCount, TimeSpan maxRetryDelay)
    : NpgsqlRetryingExecutionStrategy(dependencies, maxRetryCount, maxRetryDelay, errorCodesToAdd: null)
{
    protected override TimeSpan? GetNextDelay(Exception lastException) =>
        TimedOut(lastException) ? null : base.GetNextDelay(lastException);

    private static bool TimedOut(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is TimeoutException)
                return true;
        }
        return false;
    }
}
