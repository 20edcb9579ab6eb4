using System.Collections.Concurrent;

namespace AgentLab.Backend.Events;

/// <summary>
/// The runs this replica drives right now, each with a token that stops it: a cancel request (from this replica's
/// API, from another replica through Redis, or noticed by the lease heartbeat) cancels that token, which aborts the
/// run's LabService call (the HTTP request is cancelled, so LabService cancels the model call).
/// </summary>
public sealed class RunningExecutions
{
    private readonly ConcurrentDictionary<Guid, Run> runs = new();

    /// <summary>Registers a run; dispose the result when the run is over. Its token also fires with <paramref name="ct"/>.</summary>
    public Run Register(Guid executionId, CancellationToken ct)
    {
        var run = new Run(this, executionId, ct);
        runs[executionId] = run;
        return run;
    }

    public bool IsRunning(Guid executionId) => runs.ContainsKey(executionId);

    /// <summary>Stops the run of <paramref name="executionId"/> when this replica drives it; false when it does not.</summary>
    public bool TryStop(Guid executionId, StopReason reason)
    {
        if (!runs.TryGetValue(executionId, out var run))
            return false;
        run.Stop(reason);
        return true;
    }

    /// <summary>Why a run was stopped from outside.</summary>
    public enum StopReason
    {
        None,

        /// <summary>Someone asked to cancel it (the row is already <c>cancelled</c>).</summary>
        CancelledByRequest,

        /// <summary>The lease heartbeat found the row is no longer this replica's (cancelled or taken over).</summary>
        LeaseLost,
    }

    /// <summary>One registered run.</summary>
    public sealed class Run : IDisposable
    {
        private readonly RunningExecutions owner;
        private readonly CancellationTokenSource stop;
        private int reason;

        internal Run(RunningExecutions owner, Guid executionId, CancellationToken ct)
        {
            this.owner = owner;
            ExecutionId = executionId;
            stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        }

        public Guid ExecutionId { get; }

        /// <summary>Fires when the run must stop: its caller's token, or a stop from outside.</summary>
        public CancellationToken Token => stop.Token;

        public StopReason Reason => (StopReason)Volatile.Read(ref reason);

        public bool IsStoppedFromOutside => Reason != StopReason.None;

        internal void Stop(StopReason why)
        {
            // The first reason wins: a cancel request is more telling than the heartbeat that follows it.
            Interlocked.CompareExchange(ref reason, (int)why, (int)StopReason.None);
            try
            {
                stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The run ended meanwhile.
            }
        }

        public void Dispose()
        {
            // Only this registration: a newer run of the same id (a retry) stays registered.
            ((ICollection<KeyValuePair<Guid, Run>>)owner.runs).Remove(new KeyValuePair<Guid, Run>(ExecutionId, this));
            stop.Dispose();
        }
    }
}
