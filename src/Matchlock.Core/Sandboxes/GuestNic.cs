using Matchlock.Core.Network;
using Matchlock.Core.Network.Plumbing;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// A sandbox's NIC, its one network field: the namespace with the tap QEMU uses (always) and the
/// sealed network built on it (null only for <see cref="SandboxEnvironment.PlumbingOnly"/>).
/// Disposing releases both: the sealed network owns its namespace.
/// </summary>
internal sealed record GuestNic(NetworkNamespace Namespace, SealedNetwork? Sealed) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Sealed is not null ? Sealed.DisposeAsync() : Namespace.DisposeAsync();
}
