using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using AgentLab.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AgentLab.Backend.Executions;

/// <summary>
/// Reads and validates an <see cref="ExecutionRequest"/> body. Done by hand rather than by minimal-API binding so
/// that every bad input gets a problem that names the field (and the line/position for broken JSON), and so that
/// the size limit holds whatever server hosts the endpoint.
/// </summary>
public static class ExecutionRequestReader
{
    // The expected JSON type of each field, to say what a wrong-typed value should have been.
    private static readonly Dictionary<string, string> ExpectedTypes = new(StringComparer.Ordinal)
    {
        ["$"] = "an object",
        ["$.prompt"] = "a string",
        ["$.model"] = "a string",
        ["$.execution_type"] = "a string",
        ["$.mode"] = "a string",
        ["$.agents"] = "an array of strings",
        ["$.tools"] = "an array of strings",
        ["$.graph"] = "a string",
        ["$.parameters"] = "an object",
        ["$.parameters.temperature"] = "a number",
        ["$.parameters.top_p"] = "a number",
        ["$.parameters.max_tokens"] = "an integer",
        ["$.parameters.num_ctx"] = "an integer",
        ["$.parameters.seed"] = "an integer",
        ["$.parameters.timeout_seconds"] = "an integer",
        ["$.parameters.system"] = "a string",
    };

    /// <summary>Reads the body: the request, or the problem to answer with instead.</summary>
    public static async ValueTask<(ExecutionRequest? Request, ProblemHttpResult? Problem)> ReadAsync(
        HttpRequest http, ExecutionOptions options, CancellationToken ct)
    {
        if (!IsJson(http.ContentType))
        {
            return (null, Problems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type",
                "The request body must be JSON",
                $"Content-Type was '{http.ContentType ?? "(none)"}'; send the body as 'application/json'."));
        }

        var limit = options.MaxRequestBodyBytes;
        if (http.ContentLength > limit)
            return (null, TooLarge(limit));

        var reader = http.BodyReader;
        while (true)
        {
            ReadResult read;
            try
            {
                read = await reader.ReadAsync(ct).ConfigureAwait(false);
            }
            catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return (null, TooLarge(limit));
            }

            var buffer = read.Buffer;
            if (buffer.Length > limit)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                return (null, TooLarge(limit));
            }

            if (read.IsCompleted)
            {
                var result = Parse(buffer, options);
                reader.AdvanceTo(buffer.End);
                return result;
            }

            // Nothing consumed yet: ask for more until the body is complete.
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Parses and validates a complete body.</summary>
    public static (ExecutionRequest? Request, ProblemHttpResult? Problem) Parse(ReadOnlySequence<byte> body, ExecutionOptions options)
    {
        if (IsBlank(body))
        {
            return (null, InvalidJson("The request body is empty; send a JSON object such as {\"prompt\": \"...\"}.",
                path: "$", line: null, position: null));
        }

        ExecutionRequest? request;
        try
        {
            var json = new Utf8JsonReader(body);
            request = JsonSerializer.Deserialize(ref json, BackendJsonContext.Default.ExecutionRequest);
        }
        catch (JsonException ex)
        {
            return (null, FromJsonException(ex, IsWellFormed(body)));
        }

        if (request is null)
            return (null, InvalidJson("The request body is JSON null; send a JSON object such as {\"prompt\": \"...\"}.", "$", null, null));

        var errors = Validate(request, options);
        return errors is null ? (request, null) : (null, ValidationFailed(errors));
    }

    /// <summary>The field errors of a parsed request (keys are snake_case paths), or null when it is valid.</summary>
    public static Dictionary<string, string[]>? Validate(ExecutionRequest request, ExecutionOptions options)
    {
        Dictionary<string, string[]>? errors = null;
        void Add(string field, string message) => (errors ??= new(StringComparer.Ordinal))[field] = [message];

        var max = options.MaxPromptLength;
        if (string.IsNullOrWhiteSpace(request.Prompt))
            Add("prompt", "The prompt is required and must contain text.");
        else if (request.Prompt.Length > max)
            Add("prompt", $"The prompt has {request.Prompt.Length} characters; the limit is {max} (Execution:MaxPromptLength). Shorten it.");
        else if (request.Prompt.Contains('\0'))
            Add("prompt", "The prompt contains the NUL character (\\u0000), which cannot be stored; remove it.");

        if (request.Model is { } model && (model.Length is 0 or > 200 || string.IsNullOrWhiteSpace(model) || model.Any(char.IsControl)))
            Add("model", "The model must be a model name or alias such as \"mistral7b\" (1 to 200 printable characters), or be left out to use the default.");

        if (request.ExecutionType is { } type && !IsOneOf(type, ExecutionKinds.ExecutionTypes))
            Add("execution_type", $"The execution type '{type}' is not known; use one of: {string.Join(", ", ExecutionKinds.ExecutionTypes)}.");

        if (request.Graph is { } graph)
        {
            if (!System.Text.RegularExpressions.Regex.IsMatch(graph, "^[a-z][a-z0-9_-]{0,39}$"))
                Add("graph", $"'{graph}' is not a graph name (lowercase letters, digits, '-' and '_', starting with a letter); GET /api/v1/graphs lists them.");
            else if (request.ExecutionType is { } t && !IsOneOf(t, [ExecutionKinds.Orchestrator]))
                Add("graph", "A graph runs as an orchestrator execution; drop execution_type or set it to \"orchestrator\".");
            else if (request.Agents is { Count: > 0 })
                Add("agents", "agents picks workers of the built-in lab graph; a custom graph names its own nodes. Send one or the other.");
        }

        if (request.Mode is { } mode && !IsOneOf(mode, ExecutionKinds.Modes))
            Add("mode", $"The mode '{mode}' is not known; use one of: {string.Join(", ", ExecutionKinds.Modes)}.");

        if (request.Parameters is { } p)
        {
            if (p.Temperature is { } t && (t < 0 || t > 2 || double.IsNaN(t)))
                Add("parameters.temperature", $"The temperature must be between 0 and 2; it was {t}.");
            if (p.TopP is { } topP && (topP < 0 || topP > 1 || double.IsNaN(topP)))
                Add("parameters.top_p", $"top_p must be between 0 and 1; it was {topP}.");
            if (p.MaxTokens is <= 0)
                Add("parameters.max_tokens", $"max_tokens must be greater than 0; it was {p.MaxTokens}.");
            else if (p.MaxTokens > options.MaxTokensLimit)
                Add("parameters.max_tokens", $"max_tokens is {p.MaxTokens}; the limit is {options.MaxTokensLimit} (Execution:MaxTokensLimit). Ask for fewer.");
            if (p.NumCtx is <= 0)
                Add("parameters.num_ctx", $"num_ctx must be greater than 0; it was {p.NumCtx}.");
            if (p.TimeoutSeconds is < 1 or > 3600)
                Add("parameters.timeout_seconds", $"timeout_seconds must be between 1 and 3600; it was {p.TimeoutSeconds}.");
            if (p.System is { } system && system.Length > max)
                Add("parameters.system", $"The system prompt has {system.Length} characters; the limit is {max}.");
            else if (p.System is { } s && s.Contains('\0'))
                Add("parameters.system", "The system prompt contains the NUL character (\\u0000), which cannot be stored; remove it.");
        }

        return errors;
    }

    /// <summary>Whether a validated value equals one of the allowed ones (case is not significant).</summary>
    public static bool IsOneOf(string value, string[] allowed) =>
        Array.Exists(allowed, a => string.Equals(a, value.Trim(), StringComparison.OrdinalIgnoreCase));

    private static bool IsJson(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
            return false;
        var mediaType = contentType.AsSpan();
        var semicolon = mediaType.IndexOf(';');
        if (semicolon >= 0)
            mediaType = mediaType[..semicolon];
        mediaType = mediaType.Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (mediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase)
                && mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
    }

    private static bool IsBlank(ReadOnlySequence<byte> body)
    {
        foreach (var segment in body)
        {
            foreach (var b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                    return false;
            }
        }
        return true;
    }

    // Only on the error path: tells broken syntax apart from a well-formed value of the wrong type.
    private static bool IsWellFormed(ReadOnlySequence<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            while (reader.Read())
            {
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ProblemHttpResult FromJsonException(JsonException ex, bool wellFormed)
    {
        var path = ex.Path ?? "$";
        long? line = ex.LineNumber is { } l ? l + 1 : null;              // JsonException counts from 0
        long? position = ex.BytePositionInLine is { } b ? b + 1 : null;
        var where = line is null ? $"at {path}" : $"at {path} (line {line}, position {position})";

        string detail;
        if (!wellFormed)
        {
            detail = $"The request body is not valid JSON {where}. Check for a missing quote, comma or brace.";
        }
        else
        {
            var field = FieldName(path);
            detail = ExpectedTypes.TryGetValue(NormalizePath(path), out var expected)
                ? $"The field '{field}' has the wrong type {where}: it must be {expected}."
                : $"The field '{field}' has a value of the wrong type {where}.";
        }
        return InvalidJson(detail, path, line, position);
    }

    // "$.parameters.temperature" → "parameters.temperature"; "$['prompt']" → "prompt"; "$.agents[1]" → "agents[1]".
    private static string FieldName(string path)
    {
        var normalized = NormalizePath(path);
        return normalized == "$" ? "(body)" : normalized[2..];
    }

    private static string NormalizePath(string path) =>
        path.Replace("['", ".", StringComparison.Ordinal).Replace("']", "", StringComparison.Ordinal);

    private static ProblemHttpResult InvalidJson(string detail, string path, long? line, long? position)
    {
        var extensions = new List<KeyValuePair<string, object?>> { new("path", path) };
        if (line is not null)
        {
            extensions.Add(new("line", line));
            extensions.Add(new("position", position));
        }
        return Problems.Create(StatusCodes.Status400BadRequest, "invalid_json", "The request body is not valid JSON", detail, extensions);
    }

    private static ProblemHttpResult ValidationFailed(Dictionary<string, string[]> errors) =>
        Problems.Create(StatusCodes.Status400BadRequest, "validation_failed", "The request is not valid",
            $"Fix the fields listed in 'errors' ({string.Join(", ", errors.Keys)}) and send it again.",
            [new("errors", errors)]);

    private static ProblemHttpResult TooLarge(int limit) =>
        Security.RequestBodyLimit.Problem(limit, "Send a shorter prompt.");
}
