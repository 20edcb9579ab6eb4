using System.Globalization;
using System.Text.Json;
using System.Xml.Linq;
using AgentLab.AppHost.Hosting;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>
/// Redis as Microsoft's Garnet, from the repository's dotnet tool manifest (<c>.config/dotnet-tools.json</c>), so a
/// fresh clone needs nothing but NuGet. Restored on first use. The process is <c>dotnet GarnetServer.dll</c> from the
/// restored package, not <c>dotnet tool run garnet-server</c>: the latter starts the server as a child process, so
/// the PID the runner holds would not be the server's and stopping it would orphan Garnet.
/// </summary>
public sealed class GarnetRecipe(int port, string repoRoot) : IInfrastructureRecipe
{
    public const string ToolPackage = "garnet-server";

    private readonly List<string> notices = [];
    private string? entryPoint;

    public string Name => "redis";

    public string Endpoint => $"tcp://127.0.0.1:{port}";

    public IReadOnlyList<string> Notices => notices;

    public string ConnectionString => $"127.0.0.1:{port}";

    public IReadOnlyDictionary<string, string> ExportedEnvironment =>
        new Dictionary<string, string> { ["ConnectionStrings__redis"] = ConnectionString };

    /// <summary>The restored <c>GarnetServer.dll</c>; valid after <see cref="PrepareAsync"/>.</summary>
    public string EntryPoint => entryPoint ?? throw new InvalidOperationException("Call PrepareAsync first.");

    public async Task PrepareAsync(CancellationToken ct)
    {
        var manifest = Path.Combine(repoRoot, ".config", "dotnet-tools.json");
        var version = ManifestVersion(manifest);
        var packages = await GlobalPackagesFolderAsync(ct);
        entryPoint = FindEntryPoint(packages, version) ?? FromResolverCache(version);
        if (entryPoint is not null)
            return;

        var restore = await CommandRunner.TryRunAsync(DotnetHost, ["tool", "restore"], TimeSpan.FromMinutes(3), ct, workingDirectory: repoRoot);
        entryPoint = FindEntryPoint(packages, version) ?? FromResolverCache(version);
        if (restore is not { Succeeded: true } || entryPoint is null)
        {
            throw new InfrastructureException(
                $"Redis: `dotnet tool restore` in {repoRoot} did not install {ToolPackage} {version} " +
                $"(exit {restore?.ExitCode.ToString(CultureInfo.InvariantCulture) ?? "n/a: dotnet not found"}). " +
                $"Its output ends with:{Environment.NewLine}{restore?.Tail() ?? ""}{Environment.NewLine}" +
                "Check that NuGet (api.nuget.org or your feed) is reachable and run `dotnet tool restore` yourself, " +
                "or use a Redis you already have by setting ConnectionStrings:redis (env ConnectionStrings__redis=host:6379).");
        }
        notices.Add($"Redis: restored the {ToolPackage} {version} tool from the repository's manifest.");
    }

    public ProcessSpec CreateProcessSpec() =>
        new(DotnetHost, [EntryPoint, "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1"],
            new Dictionary<string, string>(), repoRoot);

    public Task<bool> IsReadyAsync(CancellationToken ct) => RespPing.PingAsync("127.0.0.1", port, TimeSpan.FromSeconds(1), ct);

    public Task AfterReadyAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>
    /// The dotnet host: the one running this SDK command or app when it says so (DOTNET_HOST_PATH), else the one on PATH.
    /// </summary>
    public static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string ManifestVersion(string manifest)
    {
        if (!File.Exists(manifest))
        {
            throw new InfrastructureException(
                $"Redis: the tool manifest {manifest} is missing, so Garnet cannot be restored. Restore it from git " +
                "(`git checkout -- .config/dotnet-tools.json`) or set ConnectionStrings:redis.");
        }
        using var document = JsonDocument.Parse(File.ReadAllText(manifest));
        if (document.RootElement.TryGetProperty("tools", out var tools) &&
            tools.TryGetProperty(ToolPackage, out var tool) &&
            tool.TryGetProperty("version", out var version) && version.GetString() is { Length: > 0 } text)
        {
            return text;
        }
        throw new InfrastructureException(
            $"Redis: {manifest} does not list {ToolPackage}. Add it (`dotnet tool install {ToolPackage} --version 2.2.8`) " +
            "or set ConnectionStrings:redis.");
    }

    // NuGet's global packages folder: NUGET_PACKAGES when set, else ~/.nuget/packages (what dotnet tool restore uses
    // unless a nuget.config says otherwise; then ask the SDK, which costs a process start).
    private static async Task<string> GlobalPackagesFolderAsync(CancellationToken ct)
    {
        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured)
            return configured;
        var listed = await CommandRunner.TryRunAsync(DotnetHost, ["nuget", "locals", "global-packages", "--list"], TimeSpan.FromSeconds(30), ct);
        var line = listed is { Succeeded: true } ? listed.Output.Trim() : "";
        var colon = line.IndexOf(':');
        return colon > 0 && line[(colon + 1)..].Trim() is { Length: > 0 } path
            ? path
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    /// <summary>
    /// Where the SDK itself says the restored tool is (its tool resolver cache): right even when the package landed in
    /// another packages folder than the one computed here (a NUGET_PACKAGES that differs between shells).
    /// </summary>
    private static string? FromResolverCache(string version)
    {
        var home = Environment.GetEnvironmentVariable("DOTNET_CLI_HOME") is { Length: > 0 } cliHome
            ? cliHome
            : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var cache = Path.Combine(home, ".dotnet", "toolResolverCache", "1", ToolPackage);
        if (!File.Exists(cache))
            return null;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(cache));
            return document.RootElement.EnumerateArray()
                .Where(e => e.TryGetProperty("Version", out var v) && string.Equals(v.GetString(), version, StringComparison.OrdinalIgnoreCase))
                .Select(e => e.TryGetProperty("PathToExecutable", out var p) ? p.GetString() : null)
                .FirstOrDefault(path => path is not null && File.Exists(path));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or IOException)
        {
            return null; // an internal SDK format: when it changes, the packages folder is still searched
        }
    }

    private static string? FindEntryPoint(string packages, string version)
    {
        var tools = Path.Combine(packages, ToolPackage, version.ToLowerInvariant(), "tools");
        if (!Directory.Exists(tools))
            return null;
        // tools/<tfm>/any/DotnetToolSettings.xml names the entry assembly; take the newest target framework.
        foreach (var settings in Directory.GetFiles(tools, "DotnetToolSettings.xml", SearchOption.AllDirectories).OrderDescending())
        {
            var command = XDocument.Load(settings).Descendants("Command").FirstOrDefault();
            if (command?.Attribute("EntryPoint")?.Value is { Length: > 0 } dll && File.Exists(Path.Combine(Path.GetDirectoryName(settings)!, dll)))
                return Path.Combine(Path.GetDirectoryName(settings)!, dll);
        }
        return null;
    }
}
