using System.Diagnostics;
using AgentLab.Backend.Data;
using AgentLab.Backend.Executions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace AgentLab.Bench;

/// <summary>
/// What recording one execution costs the Backend, call by call: <see cref="ExecutionStore"/>'s calls of a sync
/// execute (create, start, finish, read back) run N times in-process, wired exactly as the Backend wires them
/// (<c>AddAgentLabDatabase</c>: the context pool, the execution strategy, the health interceptor), against a
/// throw-away PostgreSQL. Each call kind runs as its own phase over all N executions, so the process's CPU time over
/// the phase divided by N is that call's CPU cost (PostgreSQL's CPU is another process's); pg_stat_statements gives
/// the server's side.
/// </summary>
internal static class StoreBenchmark
{
    private const string Owner = "bench-replica";

    public static async Task<int> RunAsync(int runs, int concurrency, string? connection, bool keep, string? extra)
    {
        var ct = CancellationToken.None;
        Console.WriteLine($"{Environment.ProcessorCount} cores; {runs} executions per phase, concurrency {concurrency}" +
            (extra is null ? "." : $"; connection string + \"{extra}\"."));
        await using var server = await BenchDatabase.StartAsync(connection, keep,
            connection is null ? ["shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"] : [], ct);

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // --options adds connection-string keywords on top (to try Npgsql settings without a rebuild).
            ["ConnectionStrings:agentlabdb"] = extra is null ? server.ConnectionString : server.ConnectionString + ";" + extra,
        });
        builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddAgentLabDatabase();
        using var host = builder.Build();
        await host.StartAsync(ct);
        var state = host.Services.GetRequiredService<DatabaseState>();
        if (!state.IsReady)
        {
            Console.Error.WriteLine($"The migration step did not finish: {state.Current.Status}: {state.Current.Detail}");
            return 1;
        }
        // A server of --connection has it only when started with shared_preload_libraries=pg_stat_statements.
        var statements = await TryAsync(server.ConnectionString, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", ct);

        var postgres = await PostgresCpu.FindAsync(server.ConnectionString, ct);
        var scopes = host.Services.GetRequiredService<IServiceScopeFactory>();
        // Two rounds: the first pays the JIT and EF's query compilation, the second is what a warm Backend pays.
        for (var round = 1; round <= 2; round++)
        {
            if (statements)
                await TryAsync(server.ConnectionString, "SELECT pg_stat_statements_reset()", ct);
            Console.WriteLine();
            Console.WriteLine(round == 1 ? "Round 1 (cold: JIT, query compilation)" : "Round 2 (warm)");
            Console.WriteLine($"{"call",-28} {"calls",6} {"p50 ms",8} {"p99 ms",8} {"CPU µs/call",12} {"alloc KB/call",14} {"PG CPU µs/call",15}");
            var ids = Enumerable.Range(0, runs).Select(_ => Guid.CreateVersion7()).ToArray();
            var node = new NodeStateRecord { Node = "inference", Position = 0, Status = ExecutionStatus.Completed, Attempt = 1 };
            await PhaseAsync(postgres, "CreateAsync", ids, concurrency, scopes, (store, id) => store.CreateAsync(NewRecord(id), ct));
            await PhaseAsync(postgres, "TryStartAsync", ids, concurrency, scopes, (store, id) => store.TryStartAsync(id, Owner, TimeSpan.FromSeconds(30), ct));
            await PhaseAsync(postgres, "FinishAsync", ids, concurrency, scopes, (store, id) => store.FinishAsync(id, Owner, Outcome(), [new()
            {
                Node = node.Node, Position = 0, Status = node.Status, Attempt = 1, Output = "2, 3, 5", DurationMs = 12.5,
                StartedAt = DateTimeOffset.UtcNow, EndedAt = DateTimeOffset.UtcNow,
            }], ct));
            await PhaseAsync(postgres, "FindAsync", ids, concurrency, scopes, (store, id) => store.FindAsync(id, ct));
            await PhaseAsync(postgres, "NodesAsync", ids, concurrency, scopes, (store, id) => store.NodesAsync(id, ct));
            if (statements)
                await PrintStatementsAsync(server.ConnectionString, runs, ct);
        }

        await host.StopAsync(ct);
        return 0;
    }

    private static async Task PhaseAsync<T>(PostgresCpu? postgres, string name, Guid[] ids, int concurrency, IServiceScopeFactory scopes,
        Func<ExecutionStore, Guid, Task<T>> call)
    {
        var latencies = new double[ids.Length];
        var next = -1;
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu = process.TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes(precise: false);
        var serverCpu = postgres?.Total();
        var loops = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < ids.Length)
            {
                // A scope per call, as a request has: the pooled context is rented and returned each time.
                await using var scope = scopes.CreateAsyncScope();
                var store = scope.ServiceProvider.GetRequiredService<ExecutionStore>();
                var started = Stopwatch.GetTimestamp();
                await call(store, ids[i]);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }));
        await Task.WhenAll(loops);
        process.Refresh();
        var cpuPerCall = (process.TotalProcessorTime - cpu).TotalMicroseconds / ids.Length;
        var allocPerCall = (GC.GetTotalAllocatedBytes(precise: false) - allocated) / 1024.0 / ids.Length;
        var serverPerCall = serverCpu is { } before ? $"{(postgres!.Total() - before).TotalMicroseconds / ids.Length,15:0}" : $"{"-",15}";
        Array.Sort(latencies);
        Console.WriteLine($"{name,-28} {ids.Length,6} {Percentile(latencies, 0.5),8:0.000} {Percentile(latencies, 0.99),8:0.000} {cpuPerCall,12:0} {allocPerCall,14:0.0} {serverPerCall}");
    }

    private static ExecutionRecord NewRecord(Guid id)
    {
        var now = DateTimeOffset.UtcNow;
        return new ExecutionRecord
        {
            Id = id,
            ExecutionType = ExecutionKinds.Simple,
            Mode = ExecutionKinds.Sync,
            Model = "mistral7b",
            Status = ExecutionStatus.Queued,
            Request = """{"prompt":"Dime 3 números primos","model":"mistral7b","execution_type":"simple","mode":"sync"}""",
            RequestHash = Convert.ToHexStringLower(id.ToByteArray()),
            CreatedAt = now,
            LeaseOwner = Owner,
            LeaseExpiresAt = now.AddSeconds(30),
        };
    }

    private static ExecutionOutcome Outcome() => new()
    {
        Status = ExecutionStatus.Completed,
        Model = "mistral:7b",
        ModelServer = "simulator",
        Output = "2, 3, 5",
        Flow = """{"edges":[],"iterations":1}""",
        DurationMs = 12.5,
        TimeToFirstTokenMs = 1.5,
        LoadDurationMs = 0,
        PromptTokens = 12,
        CompletionTokens = 54,
        TokensPerSecond = 4000,
        ModelCalls = 1,
    };

    /// <summary>The server's side of the round: each statement's calls and mean time, the costliest first.</summary>
    private static async Task PrintStatementsAsync(string connectionString, int runs, CancellationToken ct)
    {
        await using var db = new NpgsqlConnection(connectionString);
        await db.OpenAsync(ct);
        await using var command = new NpgsqlCommand("""
            SELECT calls, round(mean_exec_time::numeric, 3), round(total_exec_time::numeric, 1), left(regexp_replace(query, '\s+', ' ', 'g'), 110)
            FROM pg_stat_statements
            WHERE calls >= $1 / 2 AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            ORDER BY total_exec_time DESC LIMIT 25
            """, db);
        command.Parameters.AddWithValue(runs);
        await using var reader = await command.ExecuteReaderAsync(ct);
        Console.WriteLine($"  PostgreSQL (pg_stat_statements, statements run >= {runs / 2} times; nested trigger statements included):");
        Console.WriteLine($"  {"calls",7} {"mean ms",8} {"total ms",9}  statement");
        while (await reader.ReadAsync(ct))
            Console.WriteLine($"  {reader.GetInt64(0),7} {reader.GetDecimal(1),8} {reader.GetDecimal(2),9}  {reader.GetString(3)}");
    }

    private static async Task<bool> TryAsync(string connectionString, string sql, CancellationToken ct)
    {
        try
        {
            await using var db = new NpgsqlConnection(connectionString);
            await db.OpenAsync(ct);
            await using var command = new NpgsqlCommand(sql, db);
            await command.ExecuteNonQueryAsync(ct);
            return true;
        }
        catch (PostgresException ex)
        {
            Console.WriteLine($"  ({sql}: {ex.MessageText}; no server-side timings)");
            return false;
        }
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
