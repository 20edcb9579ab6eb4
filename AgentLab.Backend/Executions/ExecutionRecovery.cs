using AgentLab.Backend.Data;
using AgentLab.Backend.Events;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Keeps this replica's claims alive and picks up what crashed replicas left behind:
/// every third of a lease it renews the leases of the executions it is working on (<see cref="HeldExecutions"/>, one
/// UPDATE); every
/// <see cref="ExecutionOptions.SweepIntervalSeconds"/> it fails runs that lost their replica too often
/// (<c>worker_lost</c>) and takes over lapsed ones into its own queue, as many as it has room for. On a graceful
/// stop it lets go of its leases at once so that another replica need not wait for them to lapse.
/// A held run whose lease could not be renewed is no longer this replica's (cancelled, or taken over): its run here
/// is stopped, which is how a cancel reaches the replica that drives it when Redis is down or not configured.
/// </summary>
public sealed class ExecutionRecovery(
    ExecutionQueue queue,
    HeldExecutions held,
    RunningExecutions running,
    IServiceScopeFactory scopes,
    ReplicaIdentity replica,
    IOptions<ExecutionOptions> options,
    DatabaseState database,
    TimeProvider time,
    ILogger<ExecutionRecovery> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        var lease = TimeSpan.FromSeconds(settings.LeaseSeconds);
        var renewEvery = lease / 3;
        var sweepEvery = TimeSpan.FromSeconds(settings.SweepIntervalSeconds);
        var tick = renewEvery < sweepEvery ? renewEvery : sweepEvery;
        var lastRenew = time.GetTimestamp();
        var lastSweep = 0L;

        using var timer = new PeriodicTimer(tick, time);
        do
        {
            if (!database.IsReady)
                continue;
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var store = scope.ServiceProvider.GetRequiredService<ExecutionStore>();
                if (time.GetElapsedTime(lastRenew) >= renewEvery)
                {
                    var lost = await store.RenewHeldLeasesAsync(replica.Id, held.Snapshot(), lease, stoppingToken).ConfigureAwait(false);
                    lastRenew = time.GetTimestamp();
                    foreach (var id in lost)
                    {
                        if (running.TryStop(id, RunningExecutions.StopReason.LeaseLost))
                            logger.RunStoppedByHeartbeat(id);
                    }
                }
                if (lastSweep == 0 || time.GetElapsedTime(lastSweep) >= sweepEvery)
                {
                    await SweepAsync(store, lease, settings.MaxAttempts, stoppingToken).ConfigureAwait(false);
                    lastSweep = time.GetTimestamp();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The database is down or slow: leases are renewed at the next tick, long before they lapse.
                logger.RecoveryPassFailed(DatabaseErrors.Describe(ex));
            }
        }
        while (await WaitAsync(timer, stoppingToken).ConfigureAwait(false));
    }

    /// <summary>Fails exhausted runs, then takes over lapsed ones; returns the ids taken over (for tests).</summary>
    public async Task<IReadOnlyList<Guid>> SweepAsync(ExecutionStore store, TimeSpan lease, int maxAttempts, CancellationToken ct)
    {
        foreach (var id in await store.FailExhaustedAsync(maxAttempts, ct).ConfigureAwait(false))
            logger.ExecutionWorkerLost(id, maxAttempts);

        var taken = new List<Guid>();
        var room = queue.Free;
        if (room == 0)
            return taken;
        foreach (var record in await store.ClaimAbandonedAsync(replica.Id, lease, maxAttempts, room, ct).ConfigureAwait(false))
        {
            if (!queue.TryReserve())
                break;  // the lease lapses again and someone with room takes it
            held.Hold(record.Id);
            queue.Enqueue(record.Id, record.TraceParent);
            taken.Add(record.Id);
            logger.ExecutionTakenOver(record.Id, record.Status, record.Attempt);
        }
        return taken;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (!database.IsReady)
            return;
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = scope.ServiceProvider.GetRequiredService<ExecutionStore>();
            var released = await store.ReleaseLeasesAsync(replica.Id, cancellationToken).ConfigureAwait(false);
            if (released > 0)
                logger.LeasesReleased(released);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Not fatal: the leases lapse by themselves after LeaseSeconds.
            logger.RecoveryPassFailed(DatabaseErrors.Describe(ex));
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
