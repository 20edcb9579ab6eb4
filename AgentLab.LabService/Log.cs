namespace AgentLab.LabService;

// Event ids: 1xxx Ollama client, 2xxx models (2300–2399 orchestration), 3xxx inference / errors.
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information,
        "Model call {Model} finished ({DoneReason}) in {ElapsedMs:0.0} ms, first token {TtftMs:0.0} ms, {InputTokens}+{OutputTokens} tokens")]
    public static partial void ModelCallFinished(this ILogger logger, string model, string? doneReason, double elapsedMs,
        double ttftMs, int inputTokens, int outputTokens);

    [LoggerMessage(1002, LogLevel.Warning, "Model call {Model} failed after {ElapsedMs:0.0} ms: {ErrorType}: {Reason}")]
    public static partial void ModelCallFailed(this ILogger logger, string model, double elapsedMs, string errorType, string reason);

    [LoggerMessage(1003, LogLevel.Information, "Model call {Model} cancelled by the caller after {ElapsedMs:0.0} ms")]
    public static partial void ModelCallCancelled(this ILogger logger, string model, double elapsedMs);

    [LoggerMessage(2001, LogLevel.Warning, "Could not read details of model {Model}; listing it without capabilities: {Reason}")]
    public static partial void ShowModelFailed(this ILogger logger, string model, string reason);

    [LoggerMessage(2002, LogLevel.Information, "Model list refreshed from {ModelServer} {Version}: {Count} models")]
    public static partial void ModelsRefreshed(this ILogger logger, string modelServer, string version, int count);

    [LoggerMessage(2003, LogLevel.Warning,
        "The model server at {Endpoint} is the AgentLab SIMULATOR, not Ollama: outputs are synthetic")]
    public static partial void SimulatorDetected(this ILogger logger, Uri endpoint);

    [LoggerMessage(3001, LogLevel.Warning, "Request failed with {Status} {Code}: {Reason}")]
    public static partial void RequestFailed(this ILogger logger, int status, string code, string reason);

    [LoggerMessage(3002, LogLevel.Warning, "Inference stream ended with an error event {Code} after it started")]
    public static partial void StreamFailed(this ILogger logger, string code, Exception exception);

    [LoggerMessage(2450, LogLevel.Information, "Graph definition {GraphName} refused: {ErrorCount} error(s), the first at {FirstPath}")]
    public static partial void GraphRejected(this ILogger logger, string? graphName, int errorCount, string firstPath);

    [LoggerMessage(2301, LogLevel.Information, "Graph {Graph} run stopped: {StopReason} after {Nodes} node runs in {ElapsedMs:0.0} ms")]
    public static partial void OrchestrationFinished(this ILogger logger, string graph, string stopReason, int nodes, double elapsedMs);
}
