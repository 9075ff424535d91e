using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Guest.Agent;

/// <summary>Something the power-off can end: a FUSE relay or a virtiofs mount's wait.</summary>
internal interface IVfsMountSession
{
    /// <summary>Ends the session from outside (power-off); its run then reports <see cref="FuseRelayEnd.Stopped"/>.</summary>
    void Stop();
}

/// <summary>
/// A virtiofs mount's stream (docs/VFS.md "vhost-user transport"): the FUSE traffic goes over the
/// virtio-fs device to the host's back-end, so the stream only says when to unmount — the end of
/// its stdin — or the link is lost, or the power-off stops it.
/// </summary>
internal sealed class VirtiofsSession(MuxStream stream) : IVfsMountSession
{
    private readonly CancellationTokenSource _stop = new();

    public void Stop()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Already ended.
        }
    }

    /// <summary>Waits for the host to close the mount; any bytes on stdin are ignored.</summary>
    internal async Task<FuseRelayOutcome> RunAsync()
    {
        var buffer = new byte[512];
        try
        {
            while (true)
            {
                var n = await stream.ReadAsync(StreamChannel.Stdin, buffer, _stop.Token);
                if (n == 0)
                {
                    return stream.ReceivedEof(StreamChannel.Stdin)
                        ? new FuseRelayOutcome(FuseRelayEnd.HostClosed)
                        : new FuseRelayOutcome(FuseRelayEnd.LinkLost, "the stream ended without EOF");
                }
            }
        }
        catch (OperationCanceledException)
        {
            return new FuseRelayOutcome(FuseRelayEnd.Stopped);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return new FuseRelayOutcome(FuseRelayEnd.LinkLost, e.Message);
        }
        finally
        {
            _stop.Dispose();
        }
    }
}
