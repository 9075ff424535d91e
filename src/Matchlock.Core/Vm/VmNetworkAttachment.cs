namespace Matchlock.Core.Vm;

/// <summary>
/// A NIC for the VM (docs/ARCHITECTURE.md D7): QEMU runs inside <paramref name="NamespaceName"/> and attaches a
/// virtio-net device to the tap <paramref name="TapName"/> there. Made by
/// <c>Matchlock.Core.Network.Plumbing.NetworkNamespace</c>; null on <see cref="VmSpec.Network"/> means no NIC.
/// </summary>
/// <param name="NamespaceName">Named network namespace (<c>ip netns</c>, /var/run/netns/NAME).</param>
/// <param name="TapName">Persistent tap device inside that namespace.</param>
/// <param name="MacAddress">Guest MAC, <c>xx:xx:xx:xx:xx:xx</c>.</param>
public sealed record VmNetworkAttachment(string NamespaceName, string TapName, string MacAddress);
