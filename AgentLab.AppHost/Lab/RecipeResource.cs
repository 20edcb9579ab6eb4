using AgentLab.AppHost.Hosting;
using AgentLab.AppHost.Infrastructure;

namespace AgentLab.AppHost.Lab;

/// <summary>
/// Runs an infrastructure recipe (PostgreSQL, Garnet) under the runner. The recipe is made for one port, so the
/// port is chosen before the recipe (<see cref="PortFor"/>) and given to the runner too, which checks it is free.
/// </summary>
public sealed class RecipeResource(IInfrastructureRecipe recipe, TextWriter output) : IInfrastructureResource
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(100);

    public string Name => recipe.Name;

    public IReadOnlyDictionary<string, string> ExportedConfiguration => recipe.ExportedEnvironment;

    public async Task PrepareAsync(CancellationToken ct)
    {
        await recipe.PrepareAsync(ct).ConfigureAwait(false);
        foreach (var notice in recipe.Notices)
            output.WriteLine($"[{Name}] {notice}");
    }

    public ProcessSpec? CreateProcess(int port) => recipe.CreateProcessSpec();

    public async Task WaitReadyAsync(CancellationToken ct)
    {
        // Each probe is bounded by the recipe; the runner bounds the whole wait through ct.
        while (!await recipe.IsReadyAsync(ct).ConfigureAwait(false))
            await Task.Delay(ProbeInterval, ct).ConfigureAwait(false);
    }

    public Task AfterReadyAsync(CancellationToken ct) => recipe.AfterReadyAsync(ct);

    /// <summary>The configured port (<c>--Ports:name=N</c> or <c>AppHost:Ports:name</c>), else a free loopback port.</summary>
    public static int PortFor(LabAppBuilder builder, string name)
    {
        if (builder.Options.Ports.TryGetValue(name, out var configured) && configured > 0)
            return configured;
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
