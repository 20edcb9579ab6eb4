using System.Net;
using AgentLab.Backend.Security.RateLimiting;

namespace AgentLab.Tests.Backend.Security;

/// <summary>Which partition of the per-address limit a client address falls in.</summary>
public sealed class ClientPartitionTests
{
    [Theory]
    [InlineData("203.0.113.9", "203.0.113.9")]
    [InlineData("::ffff:203.0.113.9", "203.0.113.9")]
    [InlineData("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    public void ClientPartition_Address_IsTheAddressOrItsIpv6Slash64(string address, string partition)
    {
        Assert.Equal(partition, AgentLabRateLimiter.ClientPartition(IPAddress.Parse(address)));
    }

    [Fact]
    public void ClientPartition_NoAddress_IsOneSharedPartition()
    {
        Assert.Equal("unknown", AgentLabRateLimiter.ClientPartition(null));
    }
}
