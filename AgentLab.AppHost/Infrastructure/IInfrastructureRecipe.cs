using AgentLab.AppHost.Hosting;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>
/// What is specific to one server the AppHost can start itself (PostgreSQL, Garnet, redis-server): the runner calls
/// <see cref="PrepareAsync"/> once, starts <see cref="CreateProcessSpec"/>, polls <see cref="IsReadyAsync"/> until
/// it answers, calls <see cref="AfterReadyAsync"/>, and then hands <see cref="ExportedEnvironment"/> to the
/// resources that reference this one. Lifetime (restarts, stop, orphans) belongs to the runner, not here.
/// </summary>
public interface IInfrastructureRecipe
{
    /// <summary>The resource name (<c>postgres</c>, <c>redis</c>).</summary>
    string Name { get; }

    /// <summary>Where clients reach the server, for the status table (<c>tcp://127.0.0.1:5432</c>).</summary>
    string Endpoint { get; }

    /// <summary>
    /// Things the user should read, in the order they happened (a fallback data folder, a tool restore,
    /// a first initialisation). Filled by <see cref="PrepareAsync"/>; the runner prints them.
    /// </summary>
    IReadOnlyList<string> Notices { get; }

    /// <summary>One-time preparation before the first start. Idempotent; throws <see cref="InfrastructureException"/>.</summary>
    Task PrepareAsync(CancellationToken ct);

    /// <summary>The process to start; valid after <see cref="PrepareAsync"/>. The started PID is the server's.</summary>
    ProcessSpec CreateProcessSpec();

    /// <summary>One bounded readiness probe (about a second at most); false while the server is not serving yet.</summary>
    Task<bool> IsReadyAsync(CancellationToken ct);

    /// <summary>Steps that need the running server (creating the database). Idempotent: it runs after every start.</summary>
    Task AfterReadyAsync(CancellationToken ct);

    /// <summary>Configuration for dependents, in Aspire's environment-variable form (<c>ConnectionStrings__redis</c>).</summary>
    IReadOnlyDictionary<string, string> ExportedEnvironment { get; }
}
