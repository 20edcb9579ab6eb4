using System.Diagnostics;
using AgentLab.Backend.Data;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Runs queued executions in the background, <see cref="ExecutionOptions.MaxConcurrency"/> at a time. Each run gets
/// its own scope (its own DbContext) and its own span. When the host stops, runs still going are abandoned, not
/// failed: <see cref="ExecutionRecovery"/> releases their leases so a live replica takes them over.
/// </summary>
public sealed class ExecutionWorker(
    ExecutionQueue queue, HeldExecutions held, IServiceScopeFactory scopes, IOptions<ExecutionOptions> options, ILogger<ExecutionWorker> logger)
    : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, options.Value.MaxConcurrency).Select(_ => RunLoopAsync(stoppingToken)));

    private async Task RunLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            QueuedExecution next;
            try
            {
                next = await queue.DequeueAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var id = next.Id;
            // The run continues the submitting request's trace: one trace per execution, even across replicas.
            ActivityContext.TryParse(next.TraceParent, null, out var parent);
            using var activity = ExecutionTelemetry.Source.StartActivity("execution.run", ActivityKind.Internal, parent);
            activity?.SetTag(ServiceDefaults.AgentLabExecution.ExecutionIdKey, id.ToString());
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var runner = scope.ServiceProvider.GetRequiredService<ExecutionRunner>();
                await runner.RunAsync(id, ExecutionRunner.WhenCancelled.Abandon, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                logger.ExecutionAbandonedOnShutdown(id);
                return;
            }
            catch (Exception ex)
            {
                // The database went away mid-run, or a bug: the row keeps its lease, which lapses, and the sweeper
                // tries it again (up to MaxAttempts). The worker itself keeps going.
                activity?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
                if (DatabaseErrors.IsUnavailable(ex))
                    logger.ExecutionRunLostDatabase(id, DatabaseErrors.Describe(ex));
                else
                    logger.ExecutionRunCrashed(ex, id);
            }
            finally
            {
                // No longer worked on here: its lease is not renewed any more (lapses, if the row is unfinished).
                held.Release(id);
            }
        }
    }
}

/// <summary>The Backend's own spans (background runs have no request span to hang from).</summary>
public static class ExecutionTelemetry
{
    public static readonly ActivitySource Source = new("AgentLab.Backend.Executions");
}
