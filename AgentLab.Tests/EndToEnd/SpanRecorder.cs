using System.Collections.Concurrent;
using System.Diagnostics;
using AgentLab.ServiceDefaults;

namespace AgentLab.Tests.EndToEnd;

/// <summary>
/// Records finished spans of the sources our services emit. ActivityListeners are process-wide and tests run in
/// parallel, so callers must filter what they read (by trace id or by execution id), never count everything.
/// </summary>
internal sealed class SpanRecorder : IDisposable
{
    private static readonly string[] Sources = ["Microsoft.AspNetCore", "System.Net.Http", "AgentLab.LabService", "AgentLab.Backend.Executions"];

    private readonly ActivityListener listener;

    public SpanRecorder()
    {
        listener = new ActivityListener
        {
            ShouldListenTo = source => Sources.Contains(source.Name),
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => Spans.Enqueue(activity),
        };
        ActivitySource.AddActivityListener(listener);
    }

    public ConcurrentQueue<Activity> Spans { get; } = new();

    /// <summary>The finished server span of <paramref name="route"/> carrying <paramref name="executionId"/>, if any yet.</summary>
    public Activity? ServerSpan(string route, string executionId) => Spans.FirstOrDefault(a =>
        a.Kind == ActivityKind.Server
        && a.GetTagItem("http.route") as string == route
        && a.GetTagItem(AgentLabExecution.ExecutionIdKey) as string == executionId);

    /// <summary>Polls (bounded) until <paramref name="find"/> returns a span; spans stop after the answer is sent.</summary>
    public static async Task<Activity> WaitForAsync(Func<Activity?> find, string what)
    {
        var ct = TestContext.Current.CancellationToken;
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < LabStack.Bound)
        {
            if (find() is { } found)
                return found;
            await Task.Delay(20, ct);
        }
        Assert.Fail($"No span recorded for {what} within {LabStack.Bound.TotalSeconds} s.");
        return null!;
    }

    public void Dispose() => listener.Dispose();
}
