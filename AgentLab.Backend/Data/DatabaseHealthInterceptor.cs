using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace AgentLab.Backend.Data;

/// <summary>
/// Tells <see cref="DatabaseHealth"/> how every EF Core command and connection of <see cref="AgentLabDb"/> went, so
/// that any path (requests, the runner, background jobs, the migration step) notices an outage and its end; and,
/// while the database is known to be down, refuses to open a connection at all, so every path fails at once with
/// <see cref="DatabaseUnavailableException"/> (503 <c>db_unavailable</c> for a request) instead of waiting.
/// </summary>
public sealed class DatabaseHealthInterceptor(DatabaseHealth health) : DbCommandInterceptor, IDbConnectionInterceptor
{
    public override void CommandFailed(DbCommand command, CommandErrorEventData eventData) =>
        health.ReportFailure(eventData.Exception);

    public override Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        health.ReportFailure(eventData.Exception);
        return Task.CompletedTask;
    }

    public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        health.ReportSuccess();
        return result;
    }

    public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData,
        DbDataReader result, CancellationToken cancellationToken = default)
    {
        health.ReportSuccess();
        return ValueTask.FromResult(result);
    }

    public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        health.ReportSuccess();
        return result;
    }

    public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result,
        CancellationToken cancellationToken = default)
    {
        health.ReportSuccess();
        return ValueTask.FromResult(result);
    }

    public override object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        health.ReportSuccess();
        return result;
    }

    public override ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result,
        CancellationToken cancellationToken = default)
    {
        health.ReportSuccess();
        return ValueTask.FromResult(result);
    }

    public InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
    {
        health.ThrowIfDown();
        return result;
    }

    public ValueTask<InterceptionResult> ConnectionOpeningAsync(DbConnection connection, ConnectionEventData eventData,
        InterceptionResult result, CancellationToken cancellationToken = default)
    {
        health.ThrowIfDown();
        return ValueTask.FromResult(result);
    }

    public void ConnectionFailed(DbConnection connection, ConnectionErrorEventData eventData) =>
        health.ReportFailure(eventData.Exception);

    public Task ConnectionFailedAsync(DbConnection connection, ConnectionErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        health.ReportFailure(eventData.Exception);
        return Task.CompletedTask;
    }
}
