namespace AgentLab.Tests.Support;

/// <summary>A clock that always reads <paramref name="now"/>: tests build exact windows and timestamps from it.</summary>
internal sealed class StoppedClock(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;
}
