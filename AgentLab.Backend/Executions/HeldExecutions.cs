using System.Collections.Concurrent;

namespace AgentLab.Backend.Executions;

/// <summary>
/// The executions this replica is actually working on (queued here, or running here). Only these get their leases
/// renewed: a row this replica owns but dropped (its worker failed, the database blipped mid-run) lapses by itself,
/// and a sweeper takes it over instead of it being kept alive by a heartbeat with nobody behind it.
/// </summary>
public sealed class HeldExecutions
{
    private readonly ConcurrentDictionary<Guid, byte> held = new();

    public void Hold(Guid executionId) => held.TryAdd(executionId, 0);

    public void Release(Guid executionId) => held.TryRemove(executionId, out _);

    public bool IsHeld(Guid executionId) => held.ContainsKey(executionId);

    public IReadOnlyList<Guid> Snapshot() => [.. held.Keys];
}
