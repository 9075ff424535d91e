using Matchlock.Core.Interop;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// A queue's call eventfd (SET_VRING_CALL), which QEMU may replace at any time (it swaps it when
/// the guest masks interrupts): signalling and replacing are serialized, so a completion never
/// writes to a descriptor number that was closed and reused.
/// </summary>
internal sealed class VringNotifier : IDisposable
{
    private readonly Lock _gate = new();
    private int _fd = -1; // guarded by _gate

    public void Signal()
    {
        lock (_gate)
        {
            if (_fd >= 0)
            {
                VhostNative.Signal(_fd);
            }
        }
    }

    /// <summary>Takes <paramref name="fd"/> (-1: none) and closes the previous one.</summary>
    public void Replace(int fd)
    {
        lock (_gate)
        {
            if (_fd >= 0)
            {
                _ = VhostNative.Close(_fd);
            }

            _fd = fd;
        }
    }

    public void Dispose() => Replace(-1);
}
