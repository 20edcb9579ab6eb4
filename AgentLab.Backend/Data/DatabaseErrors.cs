using System.Net.Sockets;
using Npgsql;

namespace AgentLab.Backend.Data;

/// <summary>Tells a database that is not there (down, paused, refusing connections) from a bug in a query.</summary>
public static class DatabaseErrors
{
    /// <summary>True when the failure means the server cannot be reached or did not answer in time.</summary>
    public static bool IsUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case NpgsqlException { IsTransient: true }:
                case SocketException:
                case TimeoutException:
                case System.IO.IOException:
                // "the database system is starting up / shutting down", "too many connections", admin shutdown
                case PostgresException { SqlState: "57P01" or "57P02" or "57P03" or "53300" or "08000" or "08003" or "08006" or "08001" or "08004" }:
                    return true;
                case Microsoft.EntityFrameworkCore.Storage.RetryLimitExceededException:
                // DatabaseHealth refused at once: the database is known to be down.
                case DatabaseUnavailableException:
                    return true;
            }
        }
        return false;
    }

    /// <summary>The innermost useful message, for a problem detail or a log line (never a connection string).</summary>
    public static string Describe(Exception exception)
    {
        var e = exception;
        while (e.InnerException is not null && e is not PostgresException && e is not SocketException && e is not DatabaseUnavailableException)
            e = e.InnerException;
        return e switch
        {
            DatabaseUnavailableException d => d.Cause,
            PostgresException p => $"{p.SqlState}: {p.MessageText}",
            SocketException s => $"{s.SocketErrorCode}: {s.Message}",
            TimeoutException => "the server did not answer in time",
            _ => e.Message,
        };
    }
}
