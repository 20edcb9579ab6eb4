using Microsoft.Extensions.Options;
using Npgsql;

namespace AgentLab.Backend.Data;

/// <summary>
/// Whether PostgreSQL answers, as far as this replica knows. Every command reports here (through
/// <see cref="DatabaseHealthInterceptor"/>). A failure that means "unreachable" makes the database suspect and
/// starts a probe at once (<c>SELECT 1</c> on a fresh connection, bounded); when the probe fails too, the database is
/// down, and from then on every database access of this replica fails at once (<see cref="ThrowIfDown"/>, called by
/// the interceptor before a connection opens) instead of each waiting for its own timeout. While it is down the probe
/// runs every <see cref="DatabaseOptions.ProbeIntervalMilliseconds"/>; the first one that answers (or any command that
/// succeeds) ends the outage, so the Backend recovers by itself when the server returns.
/// </summary>
/// <remarks>
/// A single failed command is not enough to shut the gate: after a restart of the server one stale pooled connection
/// fails, EF Core's strategy retries at once on a fresh one, and that retry must not be refused.
/// </remarks>
public sealed class DatabaseHealth : BackgroundService
{
    private readonly DatabaseState state;
    private readonly TimeProvider time;
    private readonly ILogger<DatabaseHealth> logger;
    private readonly string connectionString;
    private readonly string probeConnectionString;
    private readonly TimeSpan probeTimeout;
    private readonly TimeSpan probeInterval;
    private readonly Lock gate = new();
    private readonly SemaphoreSlim wake = new(0, 1);
    private volatile Outage? outage;
    private volatile bool suspected;
    private TaskCompletionSource recovered = NewRecovery(completed: true);

    public DatabaseHealth(DatabaseState state, IOptions<DatabaseOptions> options, IConfiguration configuration,
        TimeProvider time, ILogger<DatabaseHealth> logger)
    {
        this.state = state;
        this.time = time;
        this.logger = logger;
        var settings = options.Value;
        var configured = configuration.GetConnectionString(DatabaseOptions.ConnectionStringName);
        connectionString = settings.BuildConnectionString(configured);
        probeConnectionString = settings.BuildProbeConnectionString(configured);
        probeTimeout = TimeSpan.FromMilliseconds(settings.ProbeTimeoutMilliseconds);
        probeInterval = TimeSpan.FromMilliseconds(settings.ProbeIntervalMilliseconds);
        var where = new NpgsqlConnectionStringBuilder(connectionString);
        Target = $"{where.Host}:{where.Port}/{where.Database}";
    }

    /// <summary>An outage as this replica sees it: why (a sentence, and its short cause), and since when.</summary>
    public sealed record Outage(string Reason, string Cause, DateTimeOffset Since);

    /// <summary>The bound of one probe (<see cref="DatabaseOptions.ProbeTimeoutMilliseconds"/>).</summary>
    public TimeSpan ProbeTimeout => probeTimeout;

    /// <summary>The server and database probed (<c>host:port/database</c>; never the user or password).</summary>
    public string Target { get; }

    /// <summary>The current outage (confirmed by a probe), or null while the database answers.</summary>
    public Outage? CurrentOutage => outage;

    /// <summary>True when executions may be recorded now: the schema is ready and the database is not known to be down.</summary>
    public bool IsAvailable => outage is null && state.IsReady;

    /// <summary>
    /// Throws <see cref="DatabaseUnavailableException"/> at once when the database is known to be down or the
    /// migration step is not done; call it before work that must write.
    /// </summary>
    public void ThrowIfUnavailable()
    {
        ThrowIfDown();
        var migration = state.Current;
        if (migration.Status != DatabaseState.Ready)
            throw new DatabaseUnavailableException($"The database schema is not ready (migration step: {migration.Status}). {migration.Detail}", migration.At);
    }

    /// <summary>Throws <see cref="DatabaseUnavailableException"/> at once while the database is known to be down.</summary>
    public void ThrowIfDown()
    {
        if (outage is { } down)
            throw new DatabaseUnavailableException(down.Reason, down.Since, down.Cause);
    }

    /// <summary>
    /// Records a failed command or connection. One that means the server is unreachable makes the database suspect:
    /// idle pooled connections are dropped and a probe runs at once, which decides.
    /// </summary>
    public void ReportFailure(Exception exception)
    {
        // Our own refusal (the gate is shut) is no new evidence; query errors say nothing about reachability.
        if (exception is DatabaseUnavailableException || !DatabaseErrors.IsUnavailable(exception) || outage is not null || suspected)
            return;
        suspected = true;
        // After a restart every idle pooled connection is dead: drop them, so the next tries open fresh ones.
        NpgsqlConnection.ClearPool(new NpgsqlConnection(connectionString));
        Wake();
    }

    /// <summary>Records a command that succeeded: the database answers. Cheap when nothing changes (the common case).</summary>
    public void ReportSuccess()
    {
        if (outage is null && !suspected)
            return;
        Outage? ended;
        lock (gate)
        {
            ended = outage;
            outage = null;
            suspected = false;
            recovered.TrySetResult();
        }
        if (ended is not null)
            logger.DatabaseRecovered(Target, (time.GetUtcNow() - ended.Since).TotalSeconds);
    }

    /// <summary>Completes when the database is not (or no longer) known to be down.</summary>
    public Task WhenAvailableAsync(CancellationToken ct)
    {
        lock (gate)
            return recovered.Task.WaitAsync(ct);
    }

    /// <summary>
    /// Waits, at most <paramref name="bound"/>, while the migration step is still running (a Backend that has just
    /// started, or an attempt in progress), so that readiness answers with the outcome rather than "migrating".
    /// </summary>
    public async Task<DatabaseState.Snapshot> WaitForMigrationStepAsync(TimeSpan bound, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        while (state.Current.Status is DatabaseState.Pending or DatabaseState.Migrating && time.GetElapsedTime(started) < bound)
            await Task.Delay(TimeSpan.FromMilliseconds(25), time, ct).ConfigureAwait(false);
        return state.Current;
    }

    /// <summary>
    /// Whether the database answers: during a known outage, the outage (the background probe is already on it);
    /// otherwise a probe now, bounded by <see cref="DatabaseOptions.ProbeTimeoutMilliseconds"/>.
    /// </summary>
    public async Task<DatabaseProbe> CheckAsync(CancellationToken ct)
    {
        if (outage is { } down)
            return new DatabaseProbe(false, null, $"{down.Reason} Down since {down.Since:u}; probing every {probeInterval.TotalSeconds:0.#} s.");
        return await ProbeAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>SELECT 1</c> on a fresh (unpooled) connection, bounded. Success ends an outage; failure confirms one.
    /// </summary>
    public async Task<DatabaseProbe> ProbeAsync(CancellationToken ct)
    {
        var started = time.GetTimestamp();
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(probeTimeout);
        var attempt = SelectOneAsync(bounded.Token);
        try
        {
            // Belt and braces: the token cancels the open and the command, and the wait bounds even a driver that ignored it.
            await attempt.WaitAsync(probeTimeout + TimeSpan.FromMilliseconds(250), ct).ConfigureAwait(false);
            var latency = Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 2);
            ReportSuccess();
            return new DatabaseProbe(true, latency, $"PostgreSQL ({Target}) answered SELECT 1 in {latency} ms.");
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            _ = attempt.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            var timedOut = ex is OperationCanceledException or TimeoutException;
            var cause = timedOut ? $"no answer within {probeTimeout.TotalMilliseconds:0} ms" : DatabaseErrors.Describe(ex);
            var reason = timedOut
                ? $"PostgreSQL ({Target}) did not answer a probe within {probeTimeout.TotalMilliseconds:0} ms."
                : $"PostgreSQL ({Target}) is unreachable ({cause}).";
            logger.DatabaseProbeFailed(reason);
            // Any failed probe counts: a server that refuses our login or lost our database cannot record executions either.
            MarkDown(reason, cause);
            return new DatabaseProbe(false, null, reason);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await wake.WaitAsync(stoppingToken).ConfigureAwait(false);
                // The first probe runs at once: a blip (a stale pooled connection after a restart) ends in milliseconds.
                do
                {
                    await ProbeAsync(stoppingToken).ConfigureAwait(false);
                    if (outage is null)
                        break;
                    await Task.Delay(probeInterval, time, stoppingToken).ConfigureAwait(false);
                }
                while (outage is not null);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        wake.Dispose();
    }

    private async Task SelectOneAsync(CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(probeConnectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT 1", connection);
        await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
    }

    private static TaskCompletionSource NewRecovery(bool completed)
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
            source.SetResult();
        return source;
    }

    private void MarkDown(string reason, string cause)
    {
        lock (gate)
        {
            suspected = false;
            if (outage is not null)
            {
                // Keep when it began; say what the latest probe saw.
                if (outage.Reason != reason)
                    outage = outage with { Reason = reason, Cause = cause };
                return;
            }
            outage = new Outage(reason, cause, time.GetUtcNow());
            recovered = NewRecovery(completed: false);
        }
        logger.DatabaseUnavailable(Target, reason);
        NpgsqlConnection.ClearPool(new NpgsqlConnection(connectionString));
        Wake();
    }

    private void Wake()
    {
        try
        {
            wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // The probe loop is already awake.
        }
        catch (ObjectDisposedException)
        {
            // Shutting down.
        }
    }
}

/// <summary>The outcome of a database probe: whether it answered, how fast, and a sentence for health reports.</summary>
public sealed record DatabaseProbe(bool Answered, double? LatencyMs, string Detail);
