namespace AgentLab.Backend;

/// <summary>The Backend's log messages (event ids 1000–1999). Prompt and output text never appear here.</summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information,
        "Execution {ExecutionId} completed ({ExecutionType}, model {Model} on {ModelServer}) in {DurationMs} ms, {PromptTokens}+{CompletionTokens} tokens")]
    public static partial void ExecutionCompleted(this ILogger logger, Guid executionId, string executionType, string model,
        string modelServer, double durationMs, int promptTokens, int completionTokens);

    [LoggerMessage(1002, LogLevel.Warning, "Execution {ExecutionId}: LabService answered {Status} {Code}")]
    public static partial void LabServiceProblem(this ILogger logger, Guid? executionId, int status, string code);

    [LoggerMessage(1003, LogLevel.Warning, "Execution {ExecutionId}: LabService is unreachable: {Reason}")]
    public static partial void LabServiceUnreachable(this ILogger logger, Guid? executionId, string reason);

    [LoggerMessage(1004, LogLevel.Warning, "Execution {ExecutionId}: LabService did not answer within {TimeoutSeconds} s")]
    public static partial void LabServiceTimedOut(this ILogger logger, Guid? executionId, double timeoutSeconds);

    [LoggerMessage(1005, LogLevel.Error, "Unhandled error on {Method} {Path}")]
    public static partial void UnhandledError(this ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(1006, LogLevel.Warning, "Health probe of LabService failed: {Reason}")]
    public static partial void HealthProbeFailed(this ILogger logger, string reason);

    [LoggerMessage(1101, LogLevel.Information, "Database ready: {Applied} migration(s) applied, schema at {Latest}")]
    public static partial void DatabaseReady(this ILogger logger, int applied, string latest);

    [LoggerMessage(1102, LogLevel.Warning, "PostgreSQL is unreachable ({Reason}); the migration step retries in {Seconds} s. Start it, or set ConnectionStrings:agentlabdb")]
    public static partial void DatabaseUnreachableAtStart(this ILogger logger, string reason, double seconds);

    [LoggerMessage(1103, LogLevel.Error, "Applying the database migrations failed; retrying in {Seconds} s")]
    public static partial void MigrationFailed(this ILogger logger, Exception exception, double seconds);

    [LoggerMessage(1010, LogLevel.Warning, "Execution {ExecutionId} ended {Status} ({Code})")]
    public static partial void ExecutionEnded(this ILogger logger, Guid executionId, string status, string code);

    [LoggerMessage(1011, LogLevel.Warning, "Execution {ExecutionId}: its outcome ({Outcome}) was not written because it is already {Status} (cancelled, or taken over by another replica)")]
    public static partial void ExecutionOutcomeDiscarded(this ILogger logger, Guid executionId, string outcome, string status);

    [LoggerMessage(1012, LogLevel.Information, "Execution {ExecutionId} left unfinished because the Backend is stopping; another replica (or this one, restarted) takes it over")]
    public static partial void ExecutionAbandonedOnShutdown(this ILogger logger, Guid executionId);

    [LoggerMessage(1013, LogLevel.Warning, "Execution {ExecutionId}: the database became unavailable during the run ({Reason}); it will be taken over when its lease lapses")]
    public static partial void ExecutionRunLostDatabase(this ILogger logger, Guid executionId, string reason);

    [LoggerMessage(1014, LogLevel.Error, "Execution {ExecutionId}: the background run failed unexpectedly; it will be taken over when its lease lapses")]
    public static partial void ExecutionRunCrashed(this ILogger logger, Exception exception, Guid executionId);

    [LoggerMessage(1015, LogLevel.Warning, "Execution {ExecutionId} failed with worker_lost: its replica stopped {MaxAttempts} time(s) while running it")]
    public static partial void ExecutionWorkerLost(this ILogger logger, Guid executionId, int maxAttempts);

    [LoggerMessage(1016, LogLevel.Information, "Execution {ExecutionId} ({Status}, attempt {Attempt}) taken over from a replica whose lease lapsed")]
    public static partial void ExecutionTakenOver(this ILogger logger, Guid executionId, string status, int attempt);

    [LoggerMessage(1017, LogLevel.Information, "Released the leases of {Count} unfinished execution(s) on shutdown")]
    public static partial void LeasesReleased(this ILogger logger, int count);

    [LoggerMessage(1018, LogLevel.Warning, "Lease renewal or sweep failed ({Reason}); trying again at the next tick")]
    public static partial void RecoveryPassFailed(this ILogger logger, string reason);

    [LoggerMessage(1019, LogLevel.Information, "Execution {ExecutionId} accepted ({Mode}); {Queued} queued on this replica")]
    public static partial void ExecutionAccepted(this ILogger logger, Guid executionId, string mode, int queued);

    [LoggerMessage(1301, LogLevel.Information,
        "Retention pass: deleted {DeletedByAge} execution(s) older than {MaxAgeDays} days and {DeletedByCount} beyond the cap of {MaxExecutions}; " +
        "compacted the events of {Compacted} execution(s), merging away {TokenEvents} token events; {DeleteStatements} DELETE(s) in {ElapsedMs:0} ms")]
    public static partial void RetentionPassCompleted(this ILogger logger, long deletedByAge, int maxAgeDays, long deletedByCount,
        int maxExecutions, long compacted, long tokenEvents, int deleteStatements, double elapsedMs);

    [LoggerMessage(1302, LogLevel.Warning, "Retention pass skipped: PostgreSQL is unreachable ({Reason}); the next pass in {Seconds} s tries again")]
    public static partial void RetentionDatabaseUnavailable(this ILogger logger, string reason, int seconds);

    [LoggerMessage(1303, LogLevel.Error, "Retention pass failed; the next pass in {Seconds} s tries again")]
    public static partial void RetentionPassFailed(this ILogger logger, Exception exception, int seconds);

    [LoggerMessage(1304, LogLevel.Debug, "Retention pass skipped: another replica is running one")]
    public static partial void RetentionSkippedLockHeld(this ILogger logger);

    [LoggerMessage(1305, LogLevel.Information, "Retention is off (Retention:Enabled=false): executions are kept until deleted by hand")]
    public static partial void RetentionDisabled(this ILogger logger);

    [LoggerMessage(1306, LogLevel.Information,
        "Retention: finished executions are kept {MaxAgeDays} days and at most {MaxExecutions} rows; events compacted {CompactMinutes} min after the end; a pass every {IntervalSeconds} s")]
    public static partial void RetentionScheduled(this ILogger logger, int maxAgeDays, int maxExecutions, int compactMinutes, int intervalSeconds);

    [LoggerMessage(1401, LogLevel.Warning, "PostgreSQL ({Target}) is down: {Reason} Requests that need it fail fast with 503 db_unavailable until a probe answers")]
    public static partial void DatabaseUnavailable(this ILogger logger, string target, string reason);

    [LoggerMessage(1402, LogLevel.Information, "PostgreSQL ({Target}) answers again after {OutageSeconds:0.0} s")]
    public static partial void DatabaseRecovered(this ILogger logger, string target, double outageSeconds);

    [LoggerMessage(1403, LogLevel.Debug, "Database probe failed: {Reason}")]
    public static partial void DatabaseProbeFailed(this ILogger logger, string reason);

    [LoggerMessage(1404, LogLevel.Warning, "{Method} {Path} failed: the database is unavailable ({Reason})")]
    public static partial void DatabaseRequestFailed(this ILogger logger, string method, string path, string reason);

    [LoggerMessage(1405, LogLevel.Debug, "{Method} {Path} refused at once: the database is unavailable ({Reason})")]
    public static partial void DatabaseRequestRefused(this ILogger logger, string method, string path, string reason);

    [LoggerMessage(1201, LogLevel.Warning,
        "A history page took {ElapsedMs} ms ({Statuses} status filter(s), type {ExecutionType}, model {Model}, after a cursor: {Paged}); the indexes should answer in milliseconds")]
    public static partial void HistorySlow(this ILogger logger, double elapsedMs, int statuses, string? executionType, string? model, bool paged);

    [LoggerMessage(1202, LogLevel.Warning,
        "Metrics took {ElapsedMs} ms for [{From}, {To}); a narrow window spanning no whole UTC day reads raw rows, a wide one reads the daily rollup")]
    public static partial void MetricsSlow(this ILogger logger, double elapsedMs, DateTimeOffset? from, DateTimeOffset? to);

    [LoggerMessage(1500, LogLevel.Information, "Graph {GraphName} {Outcome} (version {Version})")]
    public static partial void GraphSaved(this ILogger logger, string graphName, string outcome, int version);

    [LoggerMessage(1501, LogLevel.Information, "Graph {GraphName} deleted")]
    public static partial void GraphDeleted(this ILogger logger, string graphName);

    [LoggerMessage(1600, LogLevel.Warning,
        "Orchestration {ExecutionId}: LabService went away mid-run after {CompletedNodes} completed node(s) ({Reason}); continuing in {DelayMs} ms (resume {Resume} of {MaxResumes})")]
    public static partial void OrchestrationResuming(this ILogger logger, Guid executionId, int completedNodes, string reason, double delayMs, int resume, int maxResumes);

    [LoggerMessage(1601, LogLevel.Warning, "Orchestration {ExecutionId} stopped: this replica no longer holds it (cancelled, finished or taken over)")]
    public static partial void OrchestrationLeaseLost(this ILogger logger, Guid executionId);

    [LoggerMessage(1602, LogLevel.Information, "Orchestration {ExecutionId} continues after {CompletedNodes} completed node(s) of an earlier attempt")]
    public static partial void OrchestrationContinuing(this ILogger logger, Guid executionId, int completedNodes);

    [LoggerMessage(1700, LogLevel.Information, "No ConnectionStrings:redis is set: events are stored in PostgreSQL and streamed from there (polled), and a cancel reaches other replicas at their next lease heartbeat. Set ConnectionStrings:redis for live delivery across replicas")]
    public static partial void RedisNotConfigured(this ILogger logger);

    [LoggerMessage(1701, LogLevel.Warning, "Redis at {Endpoint} is unreachable at start; executions still run and are stored, and streams read PostgreSQL until it answers (retrying every 0.5 s)")]
    public static partial void RedisUnreachableAtStart(this ILogger logger, string endpoint);

    [LoggerMessage(1702, LogLevel.Warning, "Lost the connection to Redis at {Endpoint} ({FailureType}: {Reason}); streams fall back to reading PostgreSQL until it is back")]
    public static partial void RedisConnectionLost(this ILogger logger, string endpoint, string failureType, string reason);

    [LoggerMessage(1703, LogLevel.Information, "Redis at {Endpoint} is back; live delivery resumes")]
    public static partial void RedisConnectionRestored(this ILogger logger, string endpoint);

    [LoggerMessage(1704, LogLevel.Error, "Cannot use ConnectionStrings:redis ({Endpoint}); the Backend runs without Redis. Fix the connection string (host:port[,options])")]
    public static partial void RedisConnectFailed(this ILogger logger, Exception exception, string endpoint);

    [LoggerMessage(1705, LogLevel.Warning, "Publishing events of execution {ExecutionId} on Redis failed ({Reason}); they are stored, and subscribers read them from PostgreSQL (logged at most every 10 s)")]
    public static partial void RedisPublishFailed(this ILogger logger, Guid executionId, string reason);
}
