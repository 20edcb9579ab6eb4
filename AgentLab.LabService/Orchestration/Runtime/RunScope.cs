using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.AI;

namespace AgentLab.LabService.Orchestration.Runtime;

/// <summary>One run's shared counters and its event channel. Safe for nodes running in parallel.</summary>
internal sealed class RunScope(IChatClient chat, ChannelWriter<GraphEvent> events, RunBudget budget, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly long _started = Stopwatch.GetTimestamp();
    private long _seq;
    private int _modelCalls;
    private int _promptTokens;
    private int _completionTokens;
    private int _toolCalls;
    private int _steps;
    private double? _firstTokenMs;

    public IChatClient Chat => chat;
    public RunBudget Budget => budget;
    public TimeProvider Time => time;
    public DateTimeOffset Now => time.GetUtcNow();
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);
    public int ToolCalls => Volatile.Read(ref _toolCalls);
    public double? FirstTokenMs { get { lock (_gate) return _firstTokenMs; } }

    public RunUsage Usage
    {
        get
        {
            lock (_gate)
                return new RunUsage(_modelCalls, _promptTokens, _completionTokens, _steps, Elapsed);
        }
    }

    /// <summary>Assigns the next seq and writes, under one lock, so seq order is channel order and gap-free.</summary>
    public void Emit(GraphEvent e)
    {
        lock (_gate)
        {
            e.Seq = ++_seq;
            events.TryWrite(e);
        }
    }

    public void MarkFirstToken()
    {
        lock (_gate)
            _firstTokenMs ??= Elapsed.TotalMilliseconds;
    }

    public void AddStep()
    {
        lock (_gate)
            _steps++;
    }

    public void AddTokens(int input, int output)
    {
        lock (_gate)
        {
            _promptTokens += input;
            _completionTokens += output;
        }
    }

    public void AddToolCall() => Interlocked.Increment(ref _toolCalls);

    public void EnsureBudget(bool forModelCall)
    {
        lock (_gate)
        {
            if (Check(forModelCall) is { } stop)
                throw new BudgetExhaustedException(stop.Budget!, stop.Message);
            if (forModelCall)
                _modelCalls++;
        }
    }

    /// <summary>The budget that is spent, or null. A model call needs one call left; tokens and time must not be used up.</summary>
    public StopReason? Check(bool forModelCall)
    {
        lock (_gate)
        {
            if (budget.MaxWallTime is { } wall && Elapsed >= wall)
                return Exhausted(BudgetKinds.WallTime, $"the run used its wall-time budget of {wall.TotalSeconds:0.###} s");
            if (budget.MaxTokens is { } tokens && _promptTokens + _completionTokens >= tokens)
                return Exhausted(BudgetKinds.Tokens, $"the run used {_promptTokens + _completionTokens} tokens; its budget is {tokens}");
            if (forModelCall && budget.MaxModelCalls is { } calls && _modelCalls >= calls)
                return Exhausted(BudgetKinds.ModelCalls, $"the run made {_modelCalls} model calls; its budget is {calls}");
            return null;
        }
    }

    public static StopReason Exhausted(string budgetKind, string message) => new()
    {
        Code = StopCodes.BudgetExhausted,
        Budget = budgetKind,
        Message = $"Budget exhausted: {message}. Raise the budget or simplify the task.",
    };
}
