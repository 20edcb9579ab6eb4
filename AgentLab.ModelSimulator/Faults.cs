using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace AgentLab.ModelSimulator;

public enum FaultKind { None, NotFound, QueueFull, ErrorMidStream, Stall, Cut, SlowFirstToken, Http500 }

/// <summary>
/// A failure the simulator plays on purpose, chosen per request (header <c>X-Simulator-Fault: name[:arg]</c>) or per
/// model (<see cref="SimulatedModel.Fault"/>). The messages are Ollama's own so clients meet what they will meet live.
/// </summary>
public readonly record struct Fault(FaultKind Kind, int Arg)
{
    public const string HeaderName = "X-Simulator-Fault";
    public const string TokenLatencyHeader = "X-Simulator-Token-Latency-Ms";
    public const string TtftHeader = "X-Simulator-Ttft-Ms";

    // Exact texts from ollama server/sched.go and a crashed llama runner.
    public const string QueueFullMessage = "server busy, please try again.  maximum pending requests exceeded";
    public const string RunnerCrashedMessage = "llama runner process has terminated: exit status 2";
    public const string MidStreamMessage = "an error was encountered while running the model: unexpected EOF";

    public const string ValidFaults =
        "not_found, queue_full, error_mid_stream[:N], stall[:N], cut[:N], slow_first_token[:ms], http_500";

    public static readonly Fault None = new(FaultKind.None, 0);

    public static bool TryParse(string? text, out Fault fault, [NotNullWhen(false)] out string? error)
    {
        fault = None;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
            return true;

        var span = text.AsSpan().Trim();
        var colon = span.IndexOf(':');
        var name = colon < 0 ? span : span[..colon];
        var argText = colon < 0 ? [] : span[(colon + 1)..];

        (FaultKind kind, int defaultArg, bool takesArg) = name switch
        {
            "not_found" => (FaultKind.NotFound, 0, false),
            "queue_full" => (FaultKind.QueueFull, 0, false),
            "error_mid_stream" => (FaultKind.ErrorMidStream, 3, true),
            "stall" => (FaultKind.Stall, 3, true),
            "cut" => (FaultKind.Cut, 3, true),
            "slow_first_token" => (FaultKind.SlowFirstToken, 5000, true),
            "http_500" => (FaultKind.Http500, 0, false),
            _ => (FaultKind.None, 0, false),
        };
        if (kind == FaultKind.None)
        {
            error = $"unknown simulator fault '{text}'; valid faults are {ValidFaults}";
            return false;
        }

        var arg = defaultArg;
        if (colon >= 0 && (!takesArg || !int.TryParse(argText, NumberStyles.None, CultureInfo.InvariantCulture, out arg)))
        {
            error = takesArg
                ? $"simulator fault '{text}' needs a non-negative whole number after ':'; valid faults are {ValidFaults}"
                : $"simulator fault '{name}' takes no argument; valid faults are {ValidFaults}";
            return false;
        }

        fault = new Fault(kind, arg);
        return true;
    }
}
