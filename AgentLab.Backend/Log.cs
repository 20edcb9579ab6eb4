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

    [LoggerMessage(1201, LogLevel.Warning,
        "A history page took {ElapsedMs} ms ({Statuses} status filter(s), type {ExecutionType}, model {Model}, after a cursor: {Paged}); the indexes should answer in milliseconds")]
    public static partial void HistorySlow(this ILogger logger, double elapsedMs, int statuses, string? executionType, string? model, bool paged);

    [LoggerMessage(1202, LogLevel.Warning,
        "Metrics took {ElapsedMs} ms for [{From}, {To}); a narrow window spanning no whole UTC day reads raw rows, a wide one reads the daily rollup")]
    public static partial void MetricsSlow(this ILogger logger, double elapsedMs, DateTimeOffset? from, DateTimeOffset? to);
}
