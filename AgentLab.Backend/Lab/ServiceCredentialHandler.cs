using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Options;

namespace AgentLab.Backend.Lab;

/// <summary>
/// Sends the Backend's service credential (<c>LabService:ServiceKey</c>) on every LabService call. A 401 from
/// LabService means the two were configured with different keys: that is the operator's problem, not the caller's
/// token, so it becomes "LabService unavailable" with the fix, never a 401 passed on to the client.
/// </summary>
public sealed class ServiceCredentialHandler(IOptions<LabServiceOptions> options) : DelegatingHandler
{
    private readonly AuthenticationHeaderValue? credential =
        options.Value.ServiceKey is { Length: > 0 } key ? new AuthenticationHeaderValue("Bearer", key.Trim()) : null;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (credential is not null)
            request.Headers.Authorization = credential;
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            response.Dispose();
            throw new LabServiceUnavailableException(credential is null
                ? "LabService requires a service credential and the Backend has none; set LabService__ServiceKey to LabService's ServiceAuth__Key (the AppHost does)"
                : "LabService refused the Backend's service credential; LabService__ServiceKey must equal LabService's ServiceAuth__Key");
        }
        return response;
    }
}
