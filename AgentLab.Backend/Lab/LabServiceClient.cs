namespace AgentLab.Backend.Lab;

/// <summary>
/// Model calls through LabService (<c>POST /inference/</c>). Registered without any retry handler: a generation is
/// not idempotent and can take minutes. <c>HttpClient.Timeout</c> is infinite; each call is bounded by its own
/// timeout and by the caller's token (a client that disconnects cancels the generation downstream).
/// </summary>
public sealed class LabServiceClient(HttpClient http)
{
    public async Task<InferenceResponse> InferAsync(InferenceRequest request, TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        using var message = LabHttp.Post("inference/", request, LabJsonContext.Default.InferenceRequest);
        try
        {
            using var response = await LabHttp.SendAsync(http, message, static r => r.IsSuccessStatusCode, deadline.Token)
                .ConfigureAwait(false);
            return await LabHttp.ReadJsonAsync(response, LabJsonContext.Default.InferenceResponse, deadline.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new LabServiceTimeoutException(timeout);
        }
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
