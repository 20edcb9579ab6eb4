using System.Net.Sockets;
using System.Text;

namespace AgentLab.AppHost.Infrastructure;

/// <summary>Readiness for any RESP server (Garnet, redis-server): <c>PING</c> answered by <c>+PONG</c>.</summary>
public static class RespPing
{
    private static readonly byte[] Ping = Encoding.ASCII.GetBytes("*1\r\n$4\r\nPING\r\n");

    /// <summary>True when the server at 127.0.0.1:<paramref name="port"/> answers PING within <paramref name="timeout"/>.</summary>
    public static async Task<bool> PingAsync(string host, int port, TimeSpan timeout, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync(host, port, limit.Token);
            var stream = client.GetStream();
            await stream.WriteAsync(Ping, limit.Token);

            // "+PONG\r\n" is 7 bytes; a server still loading answers "-LOADING ...", which is not ready.
            var buffer = new byte[64];
            var read = 0;
            while (read < 7)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(read), limit.Token);
                if (n == 0)
                    return false;
                read += n;
                if (buffer[0] != (byte)'+')
                    return false;
            }
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG\r\n", StringComparison.Ordinal);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
