using System.Buffers.Binary;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.Fuse;

/// <summary>
/// The host end of one mount's relay (docs/VFS.md): the guest writes the kernel's requests
/// back-to-back on <c>requests</c> (each self-delimited by its header's length); each is answered
/// by the <see cref="FuseServer"/> on the thread pool — many in flight, as the kernel sends them —
/// and the replies go back on <c>replies</c>, each written whole under one lock.
/// </summary>
internal static class FuseRelayHost
{
    /// <summary>
    /// Serves until the guest's side ends (end of <paramref name="requests"/>) or
    /// <paramref name="cancellationToken"/> fires; then waits for the requests in flight.
    /// </summary>
    /// <exception cref="FuseFormatException">A request broke the protocol: the mount's stream must end.</exception>
    public static async Task ServeAsync(Stream requests, Stream replies, FuseServer server, ILogger log, CancellationToken cancellationToken)
    {
        var writeLock = new SemaphoreSlim(1, 1);
        var inFlight = new HashSet<Task>();
        var header = new byte[FuseConstants.InHeaderSize];
        try
        {
            while (true)
            {
                if (!await ReadExactlyOrEndAsync(requests, header, cancellationToken))
                {
                    return; // the guest closed its side: unmounted
                }

                var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                if (length < FuseConstants.InHeaderSize || length > FuseConstants.MaxRequest)
                {
                    throw new FuseFormatException($"a request of {length} bytes is outside {FuseConstants.InHeaderSize}..{FuseConstants.MaxRequest}");
                }

                var message = new byte[length];
                header.CopyTo(message, 0);
                if (!await ReadExactlyOrEndAsync(requests, message.AsMemory(FuseConstants.InHeaderSize), cancellationToken))
                {
                    throw new FuseFormatException("the guest's side ended inside a request");
                }

                var task = Task.Run(() => AnswerAsync(message, replies, server, writeLock, log, cancellationToken), CancellationToken.None);
                lock (inFlight)
                {
                    inFlight.Add(task);
                }

                _ = task.ContinueWith(
                    t =>
                    {
                        lock (inFlight)
                        {
                            inFlight.Remove(t);
                        }
                    },
                    TaskScheduler.Default);
            }
        }
        finally
        {
            Task[] running;
            lock (inFlight)
            {
                running = [.. inFlight];
            }

            await Task.WhenAll(running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private static async Task AnswerAsync(byte[] message, Stream replies, FuseServer server, SemaphoreSlim writeLock, ILogger log, CancellationToken cancellationToken)
    {
        byte[]? reply;
        try
        {
            reply = server.Handle(message);
        }
        catch (FuseFormatException ex)
        {
            // Framed right but unreadable inside: answer EIO rather than leave the caller waiting.
            VfsLog.MalformedRequest(log, ex.Message);
            reply = FuseReply.Error(BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(8)), Errno.EIO);
        }

        if (reply is null)
        {
            return;
        }

        await writeLock.WaitAsync(cancellationToken);
        try
        {
            await replies.WriteAsync(reply, cancellationToken);
            await replies.FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The stream is going away; the relay's reader notices and ends.
        }
        finally
        {
            writeLock.Release();
        }
    }

    private static async Task<bool> ReadExactlyOrEndAsync(Stream from, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await from.ReadAsync(buffer[read..], cancellationToken);
            if (n == 0)
            {
                return read == 0 ? false : throw new FuseFormatException($"the guest's side ended {read} bytes into a {buffer.Length}-byte read");
            }

            read += n;
        }

        return true;
    }
}

/// <summary>The VFS's log messages (event ids 1200–1209).</summary>
internal static partial class VfsLog
{
    public const string Category = "Matchlock.Vfs";

    [LoggerMessage(EventId = 1200, Level = LogLevel.Warning, Message = "vfs: a malformed request answered EIO: {Reason}")]
    public static partial void MalformedRequest(ILogger log, string reason);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning, Message = "vfs: the relay of {GuestPath} ended: {Reason}")]
    public static partial void RelayEnded(ILogger log, string guestPath, string reason);
}
