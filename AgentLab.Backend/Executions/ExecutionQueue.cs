using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Executions;

/// <summary>
/// The bounded queue of executions this replica has accepted to run in the background. A slot is reserved before
/// the execution is recorded, so a full queue refuses the submit (429) without writing anything; the reserved slot
/// then always has room for the id.
/// </summary>
public sealed class ExecutionQueue
{
    private readonly Channel<QueuedExecution> channel;
    private readonly int capacity;
    private int reserved;

    public ExecutionQueue(IOptions<ExecutionOptions> options)
    {
        capacity = options.Value.QueueCapacity;
        // Unbounded channel, bounded by the reservations: TryWrite never fails for a reserved slot.
        channel = Channel.CreateUnbounded<QueuedExecution>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });
    }

    /// <summary>Executions queued or being handed to a worker.</summary>
    public int Count => Volatile.Read(ref reserved);

    /// <summary>Free slots (for the sweeper: it takes over no more than it can queue).</summary>
    public int Free => Math.Max(0, capacity - Count);

    /// <summary>Takes a slot, or returns false when the queue is full.</summary>
    public bool TryReserve()
    {
        while (true)
        {
            var current = Volatile.Read(ref reserved);
            if (current >= capacity)
                return false;
            if (Interlocked.CompareExchange(ref reserved, current + 1, current) == current)
                return true;
        }
    }

    /// <summary>Gives a reserved slot back without using it (the submit turned out to be a duplicate, or failed).</summary>
    public void Release() => Interlocked.Decrement(ref reserved);

    /// <summary>Queues an execution into a slot reserved with <see cref="TryReserve"/>.</summary>
    public void Enqueue(Guid executionId, string? traceParent)
    {
        if (!channel.Writer.TryWrite(new QueuedExecution(executionId, traceParent)))
            throw new InvalidOperationException("The execution queue is closed.");
    }

    /// <summary>The next execution to run; its slot is freed as it is taken.</summary>
    public async ValueTask<QueuedExecution> DequeueAsync(CancellationToken ct)
    {
        var id = await channel.Reader.ReadAsync(ct).ConfigureAwait(false);
        Release();
        return id;
    }
}

/// <summary>An execution waiting for a worker, with the trace its run continues.</summary>
public readonly record struct QueuedExecution(Guid Id, string? TraceParent);
