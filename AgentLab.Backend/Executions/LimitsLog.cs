namespace AgentLab.Backend.Executions;

/// <summary>Input limits' log messages (event ids 1840–1849). Prompt text never appears in them.</summary>
internal static partial class LimitsLog
{
    [LoggerMessage(1840, LogLevel.Warning,
        "LabService's model list is unavailable ({Reason}): prompts are not checked against context windows until it answers again")]
    public static partial void ModelListUnavailable(this ILogger logger, string reason);

    [LoggerMessage(1841, LogLevel.Information,
        "Request refused: {Method} {Path} body over the {Limit}-byte limit (Content-Length {ContentLength})")]
    public static partial void BodyTooLarge(this ILogger logger, string method, string path, long limit, long? contentLength);

    [LoggerMessage(1842, LogLevel.Information,
        "Execution refused: {Code} (model {Model}, about {EstimatedTokens} tokens, window {ContextWindow})")]
    public static partial void ContextLimitRefused(this ILogger logger, string code, string model, int estimatedTokens, int contextWindow);
}
