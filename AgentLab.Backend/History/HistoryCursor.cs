using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;

namespace AgentLab.Backend.History;

/// <summary>
/// A position in the history (the last row a page returned), handed to clients as an opaque base64url token:
/// version (1 byte), <c>created_at</c> in Unix microseconds (8), id (16, RFC byte order), checksum (4).
/// </summary>
/// <remarks>
/// The checksum catches a truncated, mangled or hand-edited token so the client hears "invalid_cursor" instead of
/// getting a silently wrong page. It is not a secret-keyed MAC on purpose: a forged cursor can only name a position,
/// which <c>from</c>/<c>to</c> already let anyone choose, and a keyless format works across replicas and restarts.
/// </remarks>
public readonly record struct HistoryCursor(DateTimeOffset CreatedAt, Guid Id)
{
    private const byte Version = 1;
    private const int PayloadLength = 1 + 8 + 16;
    private const int ChecksumLength = 4;
    private const int Length = PayloadLength + ChecksumLength;

    /// <summary>The token for this position.</summary>
    public string Encode()
    {
        Span<byte> bytes = stackalloc byte[Length];
        bytes[0] = Version;
        // PostgreSQL keeps microseconds; a cursor made from a row read back from it round-trips exactly.
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], (CreatedAt.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond);
        Id.TryWriteBytes(bytes[9..], bigEndian: true, out _);
        Checksum(bytes[..PayloadLength], bytes[PayloadLength..]);
        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>Reads a token made by <see cref="Encode"/>; false for anything else.</summary>
    public static bool TryDecode(string? token, out HistoryCursor cursor)
    {
        cursor = default;
        if (string.IsNullOrEmpty(token) || token.Length > 64)
            return false;

        Span<byte> bytes = stackalloc byte[48];
        if (!Base64Url.IsValid(token) || Base64Url.GetMaxDecodedLength(token.Length) > bytes.Length)
            return false;
        if (Base64Url.DecodeFromChars(token, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != Length)
            return false;
        bytes = bytes[..Length];
        if (bytes[0] != Version)
            return false;

        Span<byte> expected = stackalloc byte[ChecksumLength];
        Checksum(bytes[..PayloadLength], expected);
        if (!expected.SequenceEqual(bytes[PayloadLength..]))
            return false;

        var micros = BinaryPrimitives.ReadInt64BigEndian(bytes[1..]);
        var ticks = DateTimeOffset.UnixEpoch.UtcTicks + (decimal)micros * TimeSpan.TicksPerMicrosecond;
        if (ticks < DateTimeOffset.MinValue.UtcTicks || ticks > DateTimeOffset.MaxValue.UtcTicks)
            return false;

        cursor = new HistoryCursor(new DateTimeOffset((long)ticks, TimeSpan.Zero), new Guid(bytes.Slice(9, 16), bigEndian: true));
        return true;
    }

    private static void Checksum(ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(payload, hash);
        hash[..ChecksumLength].CopyTo(destination);
    }
}
