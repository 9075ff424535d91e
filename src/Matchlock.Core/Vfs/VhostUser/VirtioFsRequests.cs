using System.Buffers;
using System.Buffers.Binary;
using Matchlock.Core.Vfs.Fuse;
using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// virtio-fs on a descriptor chain (virtio spec, "File System Device"): the readable part is one
/// FUSE request (in header, arguments, WRITE data), the writable part takes the reply (out
/// header, result, READ data). The request is gathered into one buffer for
/// <see cref="FuseServer.Handle"/> and the reply scattered back; the used length is the bytes
/// written. Queue 0 (hiprio) carries FORGET, BATCH_FORGET and INTERRUPT, which get no reply.
/// docs/VFS.md "vhost-user transport".
/// </summary>
internal static class VirtioFsRequests
{
    /// <summary>Answers one chain; returns the bytes written into its writable part. Never throws for guest input.</summary>
    public static uint Serve(DescriptorChain chain, FuseServer server, ILogger log)
    {
        var length = chain.ReadableLength;
        if (length < FuseConstants.InHeaderSize)
        {
            VhostUserLog.MalformedRequest(log, $"a request of {length} readable bytes has no FUSE header");
            return 0;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var message = buffer.AsMemory(0, length);
            chain.Gather(message.Span);
            var unique = BinaryPrimitives.ReadUInt64LittleEndian(message.Span[8..]);
            byte[]? reply;
            try
            {
                reply = server.Handle(message);
            }
            catch (FuseFormatException ex)
            {
                VhostUserLog.MalformedRequest(log, ex.Message);
                reply = FuseReply.Error(unique, Errno.EIO);
            }

            if (reply is null)
            {
                return 0;
            }

            if (reply.Length > chain.WritableLength)
            {
                // The guest left less room than the reply needs (a READ of n bytes is answered with at most n).
                VhostUserLog.MalformedRequest(log, $"a reply of {reply.Length} bytes does not fit the {chain.WritableLength} writable bytes");
                if (chain.WritableLength < FuseConstants.OutHeaderSize)
                {
                    return 0;
                }

                reply = FuseReply.Error(unique, Errno.EIO);
            }

            return (uint)chain.Scatter(reply);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
