using System.Security.Cryptography;
using System.Text;

namespace AgentLab.AppHost.Dashboard;

/// <summary>
/// A secret kept only as its SHA-256 and compared in constant time: hashing first gives both sides the same length,
/// so the comparison time says nothing about the secret. For the access token, its cookie and the OTLP key.
/// </summary>
internal sealed class HashedSecret(string secret)
{
    private readonly byte[] _hash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    public bool Matches(string candidate) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(candidate)), _hash);
}
