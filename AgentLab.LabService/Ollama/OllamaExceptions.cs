namespace AgentLab.LabService.Ollama;

/// <summary>A call to the model server failed. Messages say what failed, why, and what to do.</summary>
public abstract class OllamaException(string message, Uri endpoint, Exception? inner = null) : Exception(message, inner)
{
    public Uri Endpoint { get; } = endpoint;
}

/// <summary>404: the model server does not have the model.</summary>
public sealed class OllamaModelNotFoundException(Uri endpoint, string model, string serverMessage)
    : OllamaException($"The model server at {endpoint} does not have model '{model}' ({serverMessage}). " +
                      $"Pull it with 'ollama pull {model}' or pick one from GET /models/.", endpoint)
{
    public string Model { get; } = model;
    public string ServerMessage { get; } = serverMessage;
}

/// <summary>503 (queue full) or 429: the server is there but cannot take the request now.</summary>
public sealed class OllamaBusyException(Uri endpoint, int statusCode, TimeSpan? retryAfter, string serverMessage)
    : OllamaException($"The model server at {endpoint} is busy (HTTP {statusCode}: {serverMessage}). " +
                      "Retry later or lower the number of parallel requests (OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE).", endpoint)
{
    public int StatusCode { get; } = statusCode;
    public TimeSpan? RetryAfter { get; } = retryAfter;
    public string ServerMessage { get; } = serverMessage;
}

/// <summary>The server is not there: connection refused, unknown host, or no connection within the connect timeout.</summary>
public sealed class OllamaUnavailableException(Uri endpoint, string reason, Exception? inner = null)
    : OllamaException($"The model server at {endpoint} is not reachable ({reason}). Start Ollama ('ollama serve') " +
                      "or point ConnectionStrings:ollama (or Ollama:Endpoint) at a running server.", endpoint, inner);

/// <summary>Another 4xx: the request itself was refused; the server's message says why.</summary>
public sealed class OllamaRequestException(Uri endpoint, int statusCode, string serverMessage)
    : OllamaException($"The model server at {endpoint} refused the request (HTTP {statusCode}: {serverMessage}).", endpoint)
{
    public int StatusCode { get; } = statusCode;
    public string ServerMessage { get; } = serverMessage;
}

/// <summary>5xx, an <c>{"error":...}</c> line mid-stream, or a broken stream: the model itself failed.</summary>
public sealed class OllamaServerException(Uri endpoint, int? statusCode, string serverMessage, Exception? inner = null)
    : OllamaException($"The model server at {endpoint} failed{(statusCode is { } s ? $" (HTTP {s})" : "")}: {serverMessage}", endpoint, inner)
{
    public int? StatusCode { get; } = statusCode;
    public string ServerMessage { get; } = serverMessage;
}

public enum OllamaTimeoutPhase
{
    /// <summary>From sending the request until the first line of the answer.</summary>
    FirstToken,
    /// <summary>The gap between two lines of the answer.</summary>
    Idle,
    /// <summary>The whole call.</summary>
    Total,
}

/// <summary>A phase limit elapsed; the request was cancelled so the server stops generating.</summary>
public sealed class OllamaTimeoutException(Uri endpoint, string model, OllamaTimeoutPhase phase, TimeSpan limit)
    : OllamaException(Describe(endpoint, model, phase, limit), endpoint)
{
    public string Model { get; } = model;
    public OllamaTimeoutPhase Phase { get; } = phase;
    public TimeSpan Limit { get; } = limit;

    private static string Describe(Uri endpoint, string model, OllamaTimeoutPhase phase, TimeSpan limit) => phase switch
    {
        OllamaTimeoutPhase.FirstToken =>
            $"Model '{model}' at {endpoint} sent no first token within {limit.TotalSeconds:0.###} s (Ollama:FirstTokenTimeoutSeconds); " +
            "a cold model load can take minutes: raise the limit or warm the model up.",
        OllamaTimeoutPhase.Idle =>
            $"Model '{model}' at {endpoint} stalled: no output for {limit.TotalSeconds:0.###} s (Ollama:IdleTimeoutSeconds).",
        _ =>
            $"Model '{model}' at {endpoint} did not finish within {limit.TotalSeconds:0.###} s (Ollama:TotalTimeoutSeconds or " +
            "parameters.timeout_seconds); lower max_tokens or raise the limit.",
    };
}
