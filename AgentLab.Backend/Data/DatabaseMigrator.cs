using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Data;

/// <summary>
/// The migration step: applies the hand-written migrations when the Backend starts, and keeps trying (1 s, doubling
/// to 15 s) while PostgreSQL is not there yet, so the Backend can start before its database and recover by itself.
/// Until it succeeds, <see cref="DatabaseState"/> says why, and executions are refused with 503 <c>db_unavailable</c>.
/// Several replicas may start at once: EF Core takes a lock around the migration, so only one applies it.
/// The Backend waits for the first attempt before it serves requests (at most
/// <see cref="DatabaseOptions.StartupWaitSeconds"/>), so a healthy start never answers "migrating".
/// </summary>
public sealed class DatabaseMigrator(
    IServiceScopeFactory scopes, DatabaseState state, DatabaseHealth health, IOptions<DatabaseOptions> options,
    TimeProvider time, ILogger<DatabaseMigrator> logger) : BackgroundService
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestPause = TimeSpan.FromSeconds(15);
    private readonly TaskCompletionSource firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
        // Bounded: a database that is down must not keep the Backend from starting (its /health and /ready explain).
        await Task.WhenAny(firstAttempt.Task, Task.Delay(TimeSpan.FromSeconds(options.Value.StartupWaitSeconds), time, cancellationToken))
            .ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pause = FirstPause;
        while (!stoppingToken.IsCancellationRequested)
        {
            var unreachable = false;
            try
            {
                await MigrateOnceAsync(stoppingToken).ConfigureAwait(false);
                firstAttempt.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                firstAttempt.TrySetResult();
                return;
            }
            catch (Exception ex)
            {
                unreachable = DatabaseErrors.IsUnavailable(ex);
                var detail = unreachable
                    ? $"PostgreSQL is unreachable ({DatabaseErrors.Describe(ex)}); retrying within {pause.TotalSeconds:0} s (as soon as it answers). " +
                      "Start it (the AppHost does), or point ConnectionStrings:agentlabdb at a running server."
                    : $"Applying the migrations failed: {DatabaseErrors.Describe(ex)}; retrying in {pause.TotalSeconds:0} s.";
                state.Set(unreachable ? DatabaseState.Unavailable : DatabaseState.Failed, detail);
                if (unreachable)
                    logger.DatabaseUnreachableAtStart(DatabaseErrors.Describe(ex), pause.TotalSeconds);
                else
                    logger.MigrationFailed(ex, pause.TotalSeconds);
                health.ReportFailure(ex);
                firstAttempt.TrySetResult();
            }

            try
            {
                await Task.Delay(FirstPause, time, stoppingToken).ConfigureAwait(false);
                // While the server is down, DatabaseHealth probes it every second: try again as soon as it answers
                // rather than sleeping out a long pause.
                if (pause > FirstPause)
                {
                    var rest = Task.Delay(pause - FirstPause, time, stoppingToken);
                    await (unreachable ? Task.WhenAny(rest, health.WhenAvailableAsync(stoppingToken)) : rest).ConfigureAwait(false);
                    stoppingToken.ThrowIfCancellationRequested();
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, LongestPause.Ticks));
        }
    }

    private async Task MigrateOnceAsync(CancellationToken ct)
    {
        state.Set(DatabaseState.Migrating, "Applying migrations.");
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AgentLabDb>();
        // On a new database EF reads the history table before creating it and logs the failed SELECT as an error
        // (dotnet/efcore#37328): every first start showed a "fail:" that was none. Creating it first (IF NOT EXISTS,
        // as MigrateAsync would) keeps the log honest.
        await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(ct).ConfigureAwait(false);
        var pending = (await db.Database.GetPendingMigrationsAsync(ct).ConfigureAwait(false)).ToList();
        var started = time.GetTimestamp();
        if (pending.Count > 0)
        {
            // Creating or altering tables may take longer than an ordinary command.
            db.Database.SetCommandTimeout(TimeSpan.FromMinutes(5));
            await db.Database.MigrateAsync(ct).ConfigureAwait(false);
        }
        var applied = (await db.Database.GetAppliedMigrationsAsync(ct).ConfigureAwait(false)).ToList();
        var elapsed = time.GetElapsedTime(started);
        state.Set(DatabaseState.Ready, pending.Count > 0
            ? $"Applied {pending.Count} migration(s) in {elapsed.TotalMilliseconds:0} ms; schema at {applied.LastOrDefault()}."
            : $"Schema up to date at {applied.LastOrDefault()}.", applied);
        logger.DatabaseReady(pending.Count, applied.LastOrDefault() ?? "(none)");
    }
}
