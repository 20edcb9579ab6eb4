using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace AgentLab.Tests.EndToEnd;

/// <summary>Reads an execution through the Backend until it matches, while processes of the lab are being killed.</summary>
internal static class ExecutionPolling
{
    /// <summary>
    /// Polls <c>GET /api/v1/executions/{id}</c> until <paramref name="done"/> holds, within <paramref name="bound"/>.
    /// A refused connection (the Backend restarting) or a read cut short by a kill is tried again.
    /// </summary>
    public static async Task<JsonElement> PollAsync(HttpClient backend, string id, Func<JsonElement, bool> done, TimeSpan bound)
    {
        var ct = TestContext.Current.CancellationToken;
        var clock = Stopwatch.StartNew();
        string? last = null;
        while (clock.Elapsed < bound)
        {
            try
            {
                using var response = await backend.GetAsync($"/api/v1/executions/{id}", ct).WaitAsync(TimeSpan.FromSeconds(5), ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement;
                    last = body.GetProperty("status").GetString();
                    if (done(body))
                        return body;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TimeoutException)
            {
                // Restarting, or cut short by the kill; the overall bound still holds.
            }
            await Task.Delay(50, ct);
        }
        throw new TimeoutException($"execution {id} still {last ?? "unreadable"} after {bound.TotalSeconds} s");
    }
}
