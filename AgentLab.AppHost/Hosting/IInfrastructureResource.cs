namespace AgentLab.AppHost.Hosting;

/// <summary>
/// A server the AppHost can provide (PostgreSQL, Redis/Garnet, the model server): the recipe knows the binaries, the
/// one-time preparation, how to start it, when it is ready and what configuration it exports; the runner owns the
/// process (output, restarts, stop, no orphans). Minimal local contract until the infrastructure recipes are merged.
/// </summary>
public interface IInfrastructureResource
{
    /// <summary>Resource name, also the key of its exported connection string (<c>ConnectionStrings__{Name}</c>).</summary>
    string Name { get; }

    /// <summary>One-time work before the first start (initdb, tool restore); throw with a what-to-do message.</summary>
    Task PrepareAsync(CancellationToken ct);

    /// <summary>The process to run on <paramref name="port"/>, or null when the resource is external (nothing to start).</summary>
    ProcessSpec? CreateProcess(int port);

    /// <summary>Returns once the server answers; the runner bounds the wait and cancels <paramref name="ct"/>.</summary>
    Task WaitReadyAsync(CancellationToken ct);

    /// <summary>Work after the first readiness (create the database); runs once per AppHost run.</summary>
    Task AfterReadyAsync(CancellationToken ct);

    /// <summary>Variables given to resources that reference this one, e.g. <c>ConnectionStrings__redis</c>.</summary>
    IReadOnlyDictionary<string, string> ExportedConfiguration { get; }
}
