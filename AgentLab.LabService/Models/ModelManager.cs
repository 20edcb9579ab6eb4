using AgentLab.LabService.Ollama;
using Microsoft.Extensions.Options;

namespace AgentLab.LabService.Models;

/// <summary>A model the lab can run, merged from /api/tags, /api/show and /api/ps.</summary>
public sealed record LabModel(
    string Name,
    IReadOnlyList<string> Aliases,
    string? Family,
    string? ParameterSize,
    string? QuantizationLevel,
    long Size,
    string? ModifiedAt,
    IReadOnlyList<string> Capabilities,
    int? ContextLength,
    bool Loaded);

/// <summary>The model exists but cannot do what was asked (e.g. an embedding-only model asked to generate text).</summary>
public sealed class ModelNotCapableException(LabModel model, string capability)
    : Exception($"Model '{model.Name}' cannot do '{capability}': its capabilities are {string.Join(", ", model.Capabilities)}. " +
        $"Pick a model with '{capability}' (see GET /models/).")
{
    public LabModel Model { get; } = model;
    public string Capability { get; } = capability;
}

/// <summary>Which kind of model server answers: <c>ollama</c> or <c>simulator</c>.</summary>
public sealed record ModelServerInfo(string Kind, string Version, Uri Endpoint)
{
    public const string OllamaKind = "ollama";
    public const string SimulatorKind = "simulator";
}

/// <summary>A point-in-time view of the model server, shared by all callers until it expires.</summary>
public sealed record ModelSnapshot(ModelServerInfo Server, IReadOnlyList<LabModel> Models, DateTimeOffset FetchedAt, DateTimeOffset ExpiresAt);

/// <summary>
/// Lists, resolves and pulls models. Reads are served from a short-lived snapshot (Lab:ModelCacheSeconds);
/// concurrent callers share one refresh.
/// </summary>
public sealed class ModelManager
{
    private readonly OllamaClient _ollama;
    private readonly LabOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ModelManager> _logger;
    private readonly Lock _gate = new();
    private ModelSnapshot? _snapshot;
    private Task<ModelSnapshot>? _refresh;
    private bool _simulatorAnnounced;

    public ModelManager(OllamaClient ollama, IOptions<LabOptions> options, TimeProvider time, ILogger<ModelManager> logger)
    {
        _ollama = ollama;
        _options = options.Value;
        _time = time;
        _logger = logger;
        // Normalise whatever configuration binding produced into one case-insensitive map.
        Aliases = new Dictionary<string, string>(_options.Aliases, StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>How old a snapshot must be before a name missing from it makes us ask the server again.</summary>
    public static readonly TimeSpan MissRecheck = TimeSpan.FromSeconds(2);

    public IReadOnlyDictionary<string, string> Aliases { get; }

    public string DefaultModel => _options.DefaultModel;

    /// <summary>The tag a name stands for, without asking the server.</summary>
    public string ResolveAlias(string name) => ModelAliases.Resolve(name, Aliases);

    public async Task<ModelSnapshot> GetSnapshotAsync(CancellationToken ct)
    {
        var snapshot = Volatile.Read(ref _snapshot);
        if (snapshot is not null && snapshot.ExpiresAt > _time.GetUtcNow())
            return snapshot;
        Task<ModelSnapshot> refresh;
        lock (_gate)
        {
            if (_refresh is null || _refresh.IsCompleted)
                _refresh = RefreshAsync();
            refresh = _refresh;
        }
        // One caller giving up must not cancel the refresh the others wait for.
        return await refresh.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Drops the snapshot (after a pull, or when a call reports the model missing).</summary>
    public void Invalidate() => Volatile.Write(ref _snapshot, null);

    public async Task<IReadOnlyList<LabModel>> ListAsync(CancellationToken ct) =>
        (await GetSnapshotAsync(ct).ConfigureAwait(false)).Models;

    public async Task<ModelServerInfo> GetServerAsync(CancellationToken ct) =>
        (await GetSnapshotAsync(ct).ConfigureAwait(false)).Server;

    public Task<IReadOnlyList<OllamaRunningModel>> ListLoadedAsync(CancellationToken ct) => _ollama.ListRunningAsync(ct);

    /// <summary>The model a name (alias, bare name or exact tag) stands for, or <see cref="ModelNotFoundException"/>.</summary>
    public async Task<LabModel> ResolveAsync(string? name, CancellationToken ct)
    {
        var requested = string.IsNullOrWhiteSpace(name) ? _options.DefaultModel : name.Trim();
        var resolved = ResolveAlias(requested);
        var snapshot = await GetSnapshotAsync(ct).ConfigureAwait(false);
        if (Find(snapshot, resolved) is { } model)
            return model;

        // The model may have been pulled since (ollama pull on the same server): look again, at most once per
        // MissRecheck, so a stream of typos cannot turn into a stream of /api/tags + /api/show calls.
        if (_time.GetUtcNow() - snapshot.FetchedAt >= MissRecheck)
        {
            Invalidate();
            snapshot = await GetSnapshotAsync(ct).ConfigureAwait(false);
            if (Find(snapshot, resolved) is { } pulled)
                return pulled;
        }
        throw new ModelNotFoundException(requested, resolved,
            ModelAliases.CloseMatches(requested, snapshot.Models.Select(m => m.Name), Aliases));
    }

    private static LabModel? Find(ModelSnapshot snapshot, string tag)
    {
        foreach (var model in snapshot.Models)
        {
            if (model.Name.Equals(tag, StringComparison.OrdinalIgnoreCase))
                return model;
        }
        return null;
    }

    /// <summary>Pulls a model with progress; the model list is refreshed afterwards.</summary>
    public async IAsyncEnumerable<OllamaPullProgress> PullAsync(string name,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        try
        {
            await foreach (var progress in _ollama.PullModelAsync(ResolveAlias(name), ct).ConfigureAwait(false))
                yield return progress;
        }
        finally
        {
            Invalidate();
        }
    }

    private async Task<ModelSnapshot> RefreshAsync()
    {
        // Bounded on its own: it is shared, so no single caller's token may cancel it.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var ct = cts.Token;
        var versionTask = _ollama.GetVersionAsync(ct);
        var tagsTask = _ollama.ListModelsAsync(ct);
        var psTask = _ollama.ListRunningAsync(ct);
        var version = await versionTask.ConfigureAwait(false);
        var tags = await tagsTask.ConfigureAwait(false);
        var running = await psTask.ConfigureAwait(false);

        var shows = await Task.WhenAll(tags.Select(t => ShowOrNullAsync(t.Name, ct))).ConfigureAwait(false);
        var loaded = new HashSet<string>(running.Select(r => r.Name), StringComparer.OrdinalIgnoreCase);
        var models = new List<LabModel>(tags.Count);
        for (var i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            var show = shows[i];
            var details = show?.Details ?? tag.Details;
            models.Add(new LabModel(
                tag.Name,
                AliasesOf(tag.Name),
                details?.Family,
                details?.ParameterSize,
                details?.QuantizationLevel,
                tag.Size,
                tag.ModifiedAt,
                show?.Capabilities ?? [],
                show?.ContextLength ?? running.FirstOrDefault(r => r.Name == tag.Name)?.ContextLength,
                loaded.Contains(tag.Name)));
        }
        models.Sort((a, b) => string.Compare(a.Name, b.Name, StringComparison.OrdinalIgnoreCase));

        var server = new ModelServerInfo(version.IsSimulator ? ModelServerInfo.SimulatorKind : ModelServerInfo.OllamaKind,
            version.Version, _ollama.Endpoint);
        if (version.IsSimulator && !_simulatorAnnounced)
        {
            _simulatorAnnounced = true;
            _logger.SimulatorDetected(_ollama.Endpoint);
        }
        _logger.ModelsRefreshed(server.Kind, server.Version, models.Count);
        var now = _time.GetUtcNow();
        var snapshot = new ModelSnapshot(server, models, now, now.AddSeconds(_options.ModelCacheSeconds));
        Volatile.Write(ref _snapshot, snapshot);
        return snapshot;
    }

    private async Task<OllamaShowResponse?> ShowOrNullAsync(string model, CancellationToken ct)
    {
        try
        {
            return await _ollama.ShowModelAsync(model, ct).ConfigureAwait(false);
        }
        catch (OllamaException ex) when (ex is not OllamaUnavailableException)
        {
            _logger.ShowModelFailed(model, ex.Message);
            return null;
        }
    }

    private List<string> AliasesOf(string tag)
    {
        var result = new List<string>();
        foreach (var (alias, target) in Aliases)
        {
            if (ModelAliases.WithDefaultTag(target).Equals(tag, StringComparison.OrdinalIgnoreCase))
                result.Add(alias);
        }
        result.Sort(StringComparer.OrdinalIgnoreCase);
        return result;
    }
}
