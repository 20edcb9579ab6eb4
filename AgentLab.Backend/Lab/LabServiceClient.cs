namespace AgentLab.Backend.Lab;

/// <summary>
/// Model calls through LabService (<c>POST /inference/</c>, <c>POST /orchestrate/</c>: the stream readers below).
/// Registered without any retry handler: a generation is
/// not idempotent and can take minutes. <c>HttpClient.Timeout</c> is infinite; each call is bounded by its own
/// timeout and by the caller's token (a client that disconnects cancels the generation downstream).
/// </summary>
public sealed class LabServiceClient(HttpClient http)
{
    internal HttpClient Http => http;
}

/// <summary>
/// <c>POST /inference/</c> as a stream of NDJSON events (<c>started</c>, <c>token</c>, then <c>completed</c> or
/// <c>error</c>), so the run's tokens can be stored and published as they arrive.
/// </summary>
public static class LabInferenceStream
{
    /// <summary>
    /// Yields each event as it arrives, up to and including <c>completed</c> (whose <see cref="InferenceStreamEvent.Result"/>
    /// is the whole answer). A plain JSON answer is yielded as one <c>completed</c> event. An <c>error</c> event is
    /// thrown as <see cref="LabServiceProblemException"/>; a stream that breaks or ends early as
    /// <see cref="LabServiceUnavailableException"/>; <paramref name="timeout"/> bounds the whole call
    /// (<see cref="LabServiceTimeoutException"/>). Cancelling <paramref name="ct"/> aborts the request, and with it
    /// the model call in LabService.
    /// </summary>
    public static async IAsyncEnumerable<InferenceStreamEvent> StreamInferenceAsync(this LabServiceClient lab, InferenceRequest request,
        TimeSpan timeout, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var message = LabHttp.Post("inference/", request, LabJsonContext.Default.InferenceRequest);
        message.Headers.Accept.Clear();
        // NDJSON preferred; a LabService (or a fake) that answers plain JSON is still understood.
        message.Headers.Accept.Add(LabNdjson.Accept);
        message.Headers.Accept.Add(new("application/json", 0.5));

        HttpResponseMessage response;
        try
        {
            response = await LabHttp.SendAsync(lab.Http, message, static r => r.IsSuccessStatusCode, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }

        using (response)
        {
            if (response.Content.Headers.ContentType?.MediaType != "application/x-ndjson")
            {
                InferenceResponse answer;
                try
                {
                    answer = await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.InferenceResponse, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
                {
                    throw new LabServiceTimeoutException(timeout);
                }
                yield return new InferenceStreamEvent { Type = InferenceStreamEvent.CompletedType, Result = answer };
                yield break;
            }

            using var reader = await LabNdjson.OpenAsync(response, "inference", deadline.Token).ConfigureAwait(false);
            var events = 0;
            while (true)
            {
                var line = await LabNdjson.ReadLineAsync(reader, "inference", events, timeout, ct, deadline.Token).ConfigureAwait(false);
                if (line is null)
                {
                    throw new LabServiceUnavailableException(
                        $"the inference stream ended after {events} event(s) without 'completed' or 'error' (LabService stopped mid-call)");
                }
                if (line.Length == 0)
                    continue;
                var e = LabNdjson.Parse(line, (int)response.StatusCode, LabJsonContext.Default.InferenceStreamEvent);
                events++;
                if (e.Type == InferenceStreamEvent.ErrorType)
                {
                    throw new LabServiceProblemException(e.Error?.Status ?? StatusCodes.Status502BadGateway, e.Error?.Code ?? "lab_error",
                        "The model call failed in LabService", e.Error?.Message, new Dictionary<string, System.Text.Json.JsonElement>(), retryAfter: null);
                }
                if (e.Type == InferenceStreamEvent.CompletedType && e.Result is null)
                    throw LabNdjson.ContractViolation((int)response.StatusCode, "its 'completed' event has no 'result'");
                yield return e;
                if (e.Type == InferenceStreamEvent.CompletedType)
                    yield break;
            }
        }
    }
}

/// <summary>Reading LabService's NDJSON streams: transport failures and contract violations as typed errors.</summary>
internal static class LabNdjson
{
    public static readonly System.Net.Http.Headers.MediaTypeWithQualityHeaderValue Accept = new("application/x-ndjson");

    public static async Task<StreamReader> OpenAsync(HttpResponseMessage response, string what, CancellationToken ct)
    {
        try
        {
            return new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), System.Text.Encoding.UTF8);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new LabServiceUnavailableException($"the {what} stream broke before its first event ({ex.Message})", ex);
        }
    }

    public static async Task<string?> ReadLineAsync(StreamReader reader, string what, int events, TimeSpan timeout, CancellationToken ct, CancellationToken deadline)
    {
        try
        {
            return await reader.ReadLineAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new LabServiceUnavailableException($"the {what} stream broke after {events} event(s) ({ex.Message})", ex);
        }
    }

    public static T Parse<T>(string line, int status, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> typeInfo)
    {
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize(line, typeInfo) ?? throw new System.Text.Json.JsonException("the event is JSON null");
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw ContractViolation(status, $"an event does not match the contract ({ex.Message})");
        }
    }

    public static LabServiceProblemException ContractViolation(int status, string why) =>
        new(StatusCodes.Status502BadGateway, "lab_error", "LabService gave an answer the Backend cannot use",
            $"LabService answered HTTP {status}, but {why}. Check that LabService and the Backend are the same version.",
            new Dictionary<string, System.Text.Json.JsonElement>(), retryAfter: null);
}

/// <summary>
/// <c>POST /orchestrate/</c> as a stream of NDJSON events. A run is not idempotent, so nothing here retries: the
/// caller decides whether to continue the run with <c>previous_nodes</c>.
/// </summary>
public static class LabOrchestration
{
    /// <summary>
    /// Yields each event as it arrives, up to and including <c>completed</c>. An <c>error</c> event is thrown as
    /// <see cref="LabServiceProblemException"/> (its data, when present, as the <c>flow</c> and <c>stop_reason</c>
    /// extensions); a stream that breaks or ends early (LabService died) as <see cref="LabServiceUnavailableException"/>;
    /// <paramref name="timeout"/> bounds the whole run (<see cref="LabServiceTimeoutException"/>).
    /// </summary>
    public static async IAsyncEnumerable<OrchestrateEvent> OrchestrateAsync(this LabServiceClient lab, OrchestrateRequest request,
        TimeSpan timeout, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var message = LabHttp.Post("orchestrate/", request, LabJsonContext.Default.OrchestrateRequest);
        message.Headers.Accept.Clear();
        message.Headers.Accept.Add(LabNdjson.Accept);

        HttpResponseMessage response;
        try
        {
            response = await LabHttp.SendAsync(lab.Http, message, static r => r.IsSuccessStatusCode, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }

        using (response)
        {
            using var reader = await LabNdjson.OpenAsync(response, "orchestration", deadline.Token).ConfigureAwait(false);
            var events = 0;
            while (true)
            {
                var line = await LabNdjson.ReadLineAsync(reader, "orchestration", events, timeout, ct, deadline.Token).ConfigureAwait(false);
                if (line is null)
                {
                    throw new LabServiceUnavailableException(
                        $"the orchestration stream ended after {events} event(s) without 'completed' or 'error' (LabService stopped mid-run)");
                }
                if (line.Length == 0)
                    continue;
                var e = LabNdjson.Parse(line, (int)response.StatusCode, LabJsonContext.Default.OrchestrateEvent);
                events++;
                if (e.Type == OrchestrateEvent.ErrorType)
                    throw ToProblem(e);
                yield return e;
                if (e.Type == OrchestrateEvent.Completed)
                    yield break;
            }
        }
    }

    private static LabServiceProblemException ToProblem(OrchestrateEvent e)
    {
        var extensions = new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal);
        if (e.Data?.Flow is { } flow)
            extensions["flow"] = System.Text.Json.JsonSerializer.SerializeToElement(flow, LabJsonContext.Default.LabFlow);
        if (e.Data?.StopReason is { } stop)
            extensions["stop_reason"] = System.Text.Json.JsonSerializer.SerializeToElement(stop, LabJsonContext.Default.LabStopReason);
        var code = e.Error?.Code ?? "lab_error";
        return new LabServiceProblemException(e.Error?.Status ?? StatusCodes.Status502BadGateway, code,
            "The orchestration run failed in LabService", e.Error?.Message, extensions, retryAfter: null);
    }
}

/// <summary>
/// LabService's read-only endpoints (<c>GET /models/</c>, <c>GET /health</c>): safe to retry, so this client is the
/// one to give an idempotent resilience handler. Every call is bounded by the timeout it is given.
/// </summary>
public sealed class LabServiceReadClient(HttpClient http)
{
    internal HttpClient Http => http;

    public async Task<ModelList> GetModelsAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var message = LabHttp.Get("models/");
        try
        {
            using var response = await LabHttp.SendAsync(http, message, static r => r.IsSuccessStatusCode, deadline.Token)
                .ConfigureAwait(false);
            return await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.ModelList, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }
    }

    /// <summary>
    /// LabService's health: any 200 or 503 means it is up and answering (503 carries an unhealthy report). The report
    /// is null when the body is not the JSON health document.
    /// </summary>
    public async Task<LabHealthAnswer> GetHealthAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var message = LabHttp.Get("health");
        try
        {
            using var response = await LabHttp.SendAsync(http, message,
                static r => r.IsSuccessStatusCode || r.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable,
                deadline.Token).ConfigureAwait(false);
            LabHealthReport? report;
            try
            {
                report = await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.LabHealthReport, deadline.Token)
                    .ConfigureAwait(false);
            }
            catch (LabServiceProblemException)
            {
                report = null;
            }
            return new LabHealthAnswer((int)response.StatusCode, report);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }
    }
}

/// <summary>Graph validation by LabService (<c>POST /orchestrate/graphs/validate</c>).</summary>
public static class LabGraphValidation
{
    /// <summary>
    /// Sends a graph definition, as received, to LabService's validator: the validated summary, or
    /// <see cref="LabServiceProblemException"/> (400 <c>invalid_graph</c> / <c>invalid_json</c> with their errors).
    /// The validator is pure computation, so a repeat is harmless; but it is a POST, which the idempotent pipeline
    /// passes through without retrying.
    /// </summary>
    public static async Task<Graphs.GraphValidation> ValidateGraphAsync(this LabServiceReadClient lab, byte[] definition,
        TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var content = new ByteArrayContent(definition);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        using var message = new HttpRequestMessage(HttpMethod.Post, "orchestrate/graphs/validate") { Content = content };
        message.Headers.Accept.Add(new System.Net.Http.Headers.MediaTypeWithQualityHeaderValue("application/json"));
        try
        {
            using var response = await LabHttp.SendAsync(lab.Http, message, static r => r.IsSuccessStatusCode, deadline.Token)
                .ConfigureAwait(false);
            return await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.GraphValidation, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }
    }
}

/// <summary>LabService's health answer: its HTTP status and, when readable, its report.</summary>
public sealed record LabHealthAnswer(int StatusCode, LabHealthReport? Report);
