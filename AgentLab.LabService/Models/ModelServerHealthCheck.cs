using System.Diagnostics;
using AgentLab.LabService.Ollama;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AgentLab.LabService.Models;

/// <summary>
/// <c>model_server</c>: asks <c>GET /api/version</c> only (never a generation). Degraded, not Unhealthy, when the
/// server does not answer: LabService itself is fine and recovers as soon as the server is back.
/// </summary>
public sealed class ModelServerHealthCheck(OllamaClient ollama) : IHealthCheck
{
    public const string Name = "model_server";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var start = Stopwatch.GetTimestamp();
        var data = new Dictionary<string, object> { ["endpoint"] = ollama.Endpoint.ToString() };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(TimeSpan.FromSeconds(5));
            var version = await ollama.GetVersionAsync(cts.Token);
            var kind = version.IsSimulator ? ModelServerInfo.SimulatorKind : ModelServerInfo.OllamaKind;
            data["latency_ms"] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            data["version"] = version.Version;
            data["server_kind"] = kind;
            return HealthCheckResult.Healthy(
                version.IsSimulator
                    ? $"The model server at {ollama.Endpoint} is the AgentLab SIMULATOR {version.Version}: outputs are synthetic."
                    : $"Ollama {version.Version} answers at {ollama.Endpoint}.",
                data);
        }
        catch (Exception ex) when (ex is OllamaException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            data["latency_ms"] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            data["error"] = ex.Message;
            return HealthCheckResult.Degraded(
                $"The model server at {ollama.Endpoint} does not answer; model calls will fail with 503 model_unavailable. " +
                "Start Ollama ('ollama serve') or set ConnectionStrings:ollama to a running server.", ex, data);
        }
    }
}
