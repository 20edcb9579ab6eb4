using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using StackExchange.Redis;

namespace AgentLab.Bench;

/// <summary>
/// One WebSocket subscriber of <c>/api/v1/ws/executions/{id}</c>: reads frames until the server closes and, when
/// asked, stamps each frame's seq with the moment it arrived (<see cref="Stopwatch.GetTimestamp"/>, the clock the
/// Redis stamps use too).
/// </summary>
internal sealed class StreamSubscriber
{
    private readonly ClientWebSocket socket = new();
    private readonly List<(long Seq, long Stamp)>? frames;
    private readonly TaskCompletionSource firstFrame = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<long> firstToken = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private StreamSubscriber(bool record)
    {
        frames = record ? new List<(long, long)>(256) : null;
        // No client pings: only the server's heartbeat keeps an idle connection alive, which is what is measured.
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        socket.Options.SetRequestHeader("Authorization", BenchAuth.Header);
    }

    public Task Reading { get; private set; } = Task.CompletedTask;

    public int FrameCount { get; private set; }

    public long LastSeq { get; private set; }

    public string? LastType { get; private set; }

    public bool InOrder { get; private set; } = true;

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public Exception? Error { get; private set; }

    public IReadOnlyList<(long Seq, long Stamp)> Frames => frames ?? [];

    public Task FirstFrame => firstFrame.Task;

    /// <summary>The stamp of the first <c>token</c> event.</summary>
    public Task<long> FirstToken => firstToken.Task;

    public bool IsOpen => !Reading.IsCompleted && socket.State == WebSocketState.Open;

    public static async Task<StreamSubscriber> ConnectAsync(HttpMessageInvoker invoker, Uri backend, Guid id, bool record, CancellationToken ct)
    {
        var subscriber = new StreamSubscriber(record);
        var uri = new UriBuilder(new Uri(backend, $"/api/v1/ws/executions/{id}")) { Scheme = "ws" }.Uri;
        await subscriber.socket.ConnectAsync(uri, invoker, ct);
        subscriber.Reading = subscriber.ReadAsync(ct);
        return subscriber;
    }

    private async Task ReadAsync(CancellationToken ct)
    {
        var buffer = new byte[8 * 1024];
        byte[]? partial = null;
        var partialLength = 0;
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), ct);
                var stamp = Stopwatch.GetTimestamp();
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = socket.CloseStatus;
                    if (socket.State == WebSocketState.CloseReceived)
                        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, ct);
                    return;
                }
                ReadOnlySpan<byte> message;
                if (!result.EndOfMessage || partial is not null)
                {
                    // A frame larger than the buffer (a node's output): put it together first.
                    partial ??= new byte[64 * 1024];
                    if (partialLength + result.Count > partial.Length)
                        Array.Resize(ref partial, Math.Max(partial.Length * 2, partialLength + result.Count));
                    buffer.AsSpan(0, result.Count).CopyTo(partial.AsSpan(partialLength));
                    partialLength += result.Count;
                    if (!result.EndOfMessage)
                        continue;
                    message = partial.AsSpan(0, partialLength);
                    partial = null;
                    partialLength = 0;
                }
                else
                {
                    message = buffer.AsSpan(0, result.Count);
                }
                var (seq, type) = EventFields.Read(message);
                if (seq != LastSeq + 1)
                    InOrder = false;
                LastSeq = seq;
                LastType = type;
                FrameCount++;
                frames?.Add((seq, stamp));
                firstFrame.TrySetResult();
                if (type == "token")
                    firstToken.TrySetResult(stamp);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            Error = ex;
        }
        finally
        {
            firstFrame.TrySetResult();
            firstToken.TrySetCanceled(CancellationToken.None);
        }
    }

    public void Abort()
    {
        socket.Abort();
        socket.Dispose();
    }
}

/// <summary>The two fields of an event frame the benchmark needs, read without materialising the event.</summary>
internal static class EventFields
{
    public static (long Seq, string? Type) Read(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        long seq = 0;
        string? type = null;
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1)
        {
            if (reader.ValueTextEquals("seq"u8))
            {
                reader.Read();
                seq = reader.GetInt64();
            }
            else if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.GetString();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
            if (seq > 0 && type is not null)
                break;
        }
        return (seq, type);
    }
}

/// <summary>
/// "Published": the moment each seq of one execution arrives on its Redis channel, seen by a subscriber of the
/// benchmark's own (StackExchange.Redis, as the Backend uses).
/// </summary>
internal sealed class PublishStamps : IAsyncDisposable
{
    private readonly ConnectionMultiplexer redis;
    private readonly ConcurrentDictionary<long, long> stamps = new();

    private PublishStamps(ConnectionMultiplexer redis) => this.redis = redis;

    public IReadOnlyDictionary<long, long> Stamps => stamps;

    public static async Task<PublishStamps> SubscribeAsync(string connectionString, string channel)
    {
        var redis = await ConnectionMultiplexer.ConnectAsync(connectionString);
        // Handlers run as soon as a message is read, not queued behind each other (the 1.x default preserves order).
        redis.PreserveAsyncOrder = false;
        var result = new PublishStamps(redis);
        await redis.GetSubscriber().SubscribeAsync(channel, (_, value) =>
        {
            var stamp = Stopwatch.GetTimestamp();
            var (seq, _) = EventFields.Read((byte[])value!);
            result.stamps.TryAdd(seq, stamp);
        });
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        await redis.CloseAsync(allowCommandsToComplete: false);
        redis.Dispose();
    }
}

/// <summary>Sorted samples in milliseconds and their percentiles.</summary>
internal sealed class Samples(IEnumerable<double> values)
{
    private readonly double[] sorted = values.Order().ToArray();

    public int Count => sorted.Length;

    public double P(double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public double Max => sorted.Length == 0 ? double.NaN : sorted[^1];

    public static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;
}

/// <summary>What the machine allows, and the memory of a process, from /proc (Linux).</summary>
internal static class MachineLimits
{
    /// <summary>The soft limit of open files of this process (inherited by the servers it starts).</summary>
    public static long OpenFiles()
    {
        foreach (var line in File.ReadLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], CultureInfo.InvariantCulture);
        }
        return -1;
    }

    public static string PortRange() =>
        File.Exists("/proc/sys/net/ipv4/ip_local_port_range")
            ? File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Trim().Replace('\t', '-')
            : "unknown";

    /// <summary>Resident set size of <paramref name="pid"/> in bytes (VmRSS).</summary>
    public static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"No VmRSS in /proc/{pid}/status.");
    }

    /// <summary>How many file descriptors <paramref name="pid"/> has open.</summary>
    public static int OpenDescriptors(int pid) => Directory.GetFiles($"/proc/{pid}/fd").Length;
}

/// <summary>
/// A WebSocket client on a bare TCP socket, to see what ClientWebSocket hides: the control frames (ping 0x9, pong 0xA)
/// the server sends on an idle connection, i.e. its heartbeat.
/// </summary>
internal sealed class RawWebSocketProbe : IDisposable
{
    private readonly System.Net.Sockets.TcpClient tcp = new();
    private Stream stream = Stream.Null;

    public int Pings { get; private set; }

    public int Pongs { get; private set; }

    public int DataFrames { get; private set; }

    public bool Closed { get; private set; }

    public static async Task<RawWebSocketProbe> ConnectAsync(Uri backend, Guid id, CancellationToken ct)
    {
        var probe = new RawWebSocketProbe();
        await probe.tcp.ConnectAsync(backend.Host, backend.Port, ct);
        probe.stream = probe.tcp.GetStream();
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var request = $"GET /api/v1/ws/executions/{id} HTTP/1.1\r\nHost: {backend.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: {BenchAuth.Header}\r\n\r\n";
        await probe.stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request), ct);
        // The response headers end with an empty line; read byte by byte up to it (a few hundred bytes).
        var headers = new System.Text.StringBuilder();
        var one = new byte[1];
        while (!headers.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await probe.stream.ReadAsync(one, ct) == 0)
                throw new IOException("The server closed during the WebSocket handshake.");
            headers.Append((char)one[0]);
        }
        if (!headers.ToString().StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            throw new IOException("The WebSocket handshake was refused: " + headers.ToString().Split('\r')[0]);
        return probe;
    }

    /// <summary>Reads frames (server frames are unmasked) for <paramref name="duration"/>, counting them by kind.</summary>
    public async Task ListenAsync(TimeSpan duration)
    {
        using var timeout = new CancellationTokenSource(duration);
        var header = new byte[2];
        var extended = new byte[8];
        try
        {
            while (true)
            {
                await stream.ReadExactlyAsync(header, timeout.Token);
                var opcode = header[0] & 0x0F;
                long length = header[1] & 0x7F;
                if (length == 126)
                {
                    await stream.ReadExactlyAsync(extended.AsMemory(0, 2), timeout.Token);
                    length = (extended[0] << 8) | extended[1];
                }
                else if (length == 127)
                {
                    await stream.ReadExactlyAsync(extended, timeout.Token);
                    length = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(extended);
                }
                var payload = new byte[length];
                await stream.ReadExactlyAsync(payload, timeout.Token);
                switch (opcode)
                {
                    case 0x8: Closed = true; return;
                    case 0x9: Pings++; break;
                    case 0xA: Pongs++; break;
                    default: DataFrames++; break;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // Listened long enough.
        }
        catch (EndOfStreamException)
        {
            Closed = true;
        }
    }

    public void Dispose() => tcp.Dispose();
}
