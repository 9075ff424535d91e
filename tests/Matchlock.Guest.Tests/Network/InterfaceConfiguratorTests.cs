using Matchlock.Guest.Configuration;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests.Network;

/// <summary>
/// The NIC setup's checks before it touches anything. Applying it in a scratch network namespace
/// needs root: Matchlock.Guest.Integration.Tests/Network/InterfaceConfiguratorNamespaceTests.
/// </summary>
public sealed class InterfaceConfiguratorTests
{
    [Fact]
    public void Refuses_bad_addresses_before_touching_anything()
    {
        Assert.Throws<ArgumentException>(() => InterfaceConfigurator.Apply(new GuestNetworkConfig { Address = "fd00::2", PrefixLength = 30, Gateway = "10.77.0.1" }));
        Assert.Throws<ArgumentException>(() => InterfaceConfigurator.Apply(new GuestNetworkConfig { Address = "10.77.0.2", PrefixLength = 31, Gateway = "10.77.0.1" }));
        Assert.Throws<ArgumentException>(() => InterfaceConfigurator.Apply(new GuestNetworkConfig { Address = "10.77.0.2", PrefixLength = 30, Gateway = "x" }));
    }
}
