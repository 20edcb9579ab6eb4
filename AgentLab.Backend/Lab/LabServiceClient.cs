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

/// <summary>LabService's health answer: its HTTP status and, when readable, its report.</summary>
public sealed record LabHealthAnswer(int StatusCode, LabHealthReport? Report);
