using StackExchange.Redis;

namespace AgentLab.Backend.Events;

/// <summary>
/// Delivers cancel requests to the replica that drives the run. A cancel stops a run of this replica directly;
/// otherwise it is published on <see cref="EventChannels.Cancel"/>, which every replica listens to from start-up.
/// Without Redis the lease heartbeat still stops the run (<see cref="Executions.ExecutionRecovery"/>): slower, never lost.
/// </summary>
public sealed class CancelSignals(RunningExecutions running, RedisConnection redis, ILogger<CancelSignals> logger) : IHostedService
{
    private static readonly TimeSpan SubscribeRetry = TimeSpan.FromSeconds(1);
    private readonly CancellationTokenSource stopping = new();
    private readonly TaskCompletionSource subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task listening = Task.CompletedTask;

    /// <summary>Completes once this replica listens on <see cref="EventChannels.Cancel"/> (never without Redis).</summary>
    public Task Subscribed => subscribed.Task;

    /// <summary>Stops the run of <paramref name="executionId"/>, whose row is already <c>cancelled</c>, wherever it runs.</summary>
    public void Send(Guid executionId)
    {
        if (running.TryStop(executionId, RunningExecutions.StopReason.CancelledByRequest))
        {
            logger.CancelDelivered(executionId, "its run is on this replica and was stopped directly");
            return;
        }
        if (redis.Subscriber is not { } subscriber)
        {
            logger.CancelDelivered(executionId, "Redis is unavailable; the replica running it stops it at its next lease heartbeat");
            return;
        }
        try
        {
            subscriber.Publish(EventChannels.Cancel, executionId.ToString(), CommandFlags.FireAndForget);
            logger.CancelDelivered(executionId, "published to the other replicas");
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException or TimeoutException)
        {
            logger.CancelDelivered(executionId, $"publishing on Redis failed ({ex.Message}); the lease heartbeat stops it");
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Listening never holds up start-up: Redis may be down or slow, and the heartbeat covers for it meanwhile.
        if (redis.IsConfigured)
            listening = ListenAsync(stopping.Token);
        return Task.CompletedTask;
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        var reported = false;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (await redis.Connection.WaitAsync(ct).ConfigureAwait(false) is not { } connection)
                    return;   // an unusable connection string, reported by RedisConnection
                // The library restores this subscription by itself after every reconnect.
                await connection.GetSubscriber().SubscribeAsync(EventChannels.Cancel, OnMessage).WaitAsync(ct).ConfigureAwait(false);
                subscribed.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
            {
                if (!reported)
                    logger.CancelSubscriptionFailed(EventChannels.Cancel, ex.Message);
                reported = true;
            }
            try
            {
                await Task.Delay(SubscribeRetry, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void OnMessage(RedisChannel channel, RedisValue message)
    {
        if (Guid.TryParse((string?)message, out var id) && running.TryStop(id, RunningExecutions.StopReason.CancelledByRequest))
            logger.CancelDelivered(id, "received from another replica; its run here was stopped");
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Called again when the host is disposed after it stopped: cancelling twice is harmless, disposing is not.
        await stopping.CancelAsync().ConfigureAwait(false);
        await listening.ConfigureAwait(false);
    }
}

public static class EventWritingExtensions
{
    /// <summary>Event journals for runs, the registry of this replica's runs, cancel delivery and <see cref="EventOptions"/>.</summary>
    public static IServiceCollection AddExecutionEventWriting(this IServiceCollection services)
    {
        services.AddOptions<EventOptions>().BindConfiguration(EventOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<EventJournals>();
        services.AddSingleton<RunningExecutions>();
        services.AddSingleton<CancelSignals>();
        services.AddHostedService(sp => sp.GetRequiredService<CancelSignals>());
        return services;
    }
}
