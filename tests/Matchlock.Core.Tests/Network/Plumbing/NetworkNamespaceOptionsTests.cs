using System.Net;
using Matchlock.Core.Network.Plumbing;

namespace Matchlock.Core.Tests.Network.Plumbing;

/// <summary>
/// Option checks that run before anything touches the kernel. The namespace, tap and firewall
/// themselves are proven as root in Matchlock.Integration.Tests (Network/Plumbing/NetworkNamespaceTests).
/// </summary>
public sealed class NetworkNamespaceOptionsTests
{
    [Fact]
    public void Options_refuse_public_addresses_and_mismatched_subnets()
    {
        Assert.Throws<ArgumentException>(() => new NetworkNamespaceOptions { Gateway = IPAddress.Parse("8.8.8.8") }.Validate());
        Assert.Throws<ArgumentException>(() => new NetworkNamespaceOptions { GuestAddress = IPAddress.Parse("10.77.1.2") }.Validate());
        Assert.Throws<ArgumentException>(() => new NetworkNamespaceOptions { Mtu = 100 }.Validate());
        Assert.Throws<ArgumentException>(() => new NetworkNamespaceOptions { TapName = "a-name-longer-than-15" }.Validate());
        new NetworkNamespaceOptions().Validate();
    }
}
