using System.Buffers;
using System.IO.Pipelines;

namespace Matchlock.Core.Network.Proxy;

/// <summary>What the first bytes of a guest connection look like.</summary>
internal enum SniffedProtocol
{
    /// <summary>A TLS record of type handshake (0x16): a ClientHello.</summary>
    Tls,

    /// <summary>An HTTP/1.x request line: an upper-case method token and a space.</summary>
    Http,

    /// <summary>Anything else, or silence until the timeout (a server-speaks-first protocol).</summary>
    Other,

    /// <summary>The guest closed without sending anything.</summary>
    Closed,
}

/// <summary>
/// Classifies a connection by peeking at its first bytes without consuming them, so whichever
/// handler runs next (Kestrel's TLS, Kestrel's HTTP, or the raw relay) sees the stream untouched.
/// </summary>
internal static class ProtocolSniffer
{
    /// <summary>Longest method we wait for before deciding "not HTTP" (PROPFIND, MKCALENDAR…).</summary>
    private const int MaxMethodLength = 12;

    public static async ValueTask<SniffedProtocol> SniffAsync(PipeReader input, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return SniffedProtocol.Other;
            }

            var buffer = result.Buffer;
            var verdict = Classify(buffer);
            if (verdict is not null || result.IsCompleted || result.IsCanceled)
            {
                // Consume and examine nothing: the next reader gets every byte, immediately.
                input.AdvanceTo(buffer.Start);
                return verdict ?? (buffer.IsEmpty ? SniffedProtocol.Closed : SniffedProtocol.Other);
            }

            // Undecided: mark everything examined so the next read waits for more bytes.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>The verdict, or null when more bytes are needed.</summary>
    internal static SniffedProtocol? Classify(ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return null;
        }

        Span<byte> head = stackalloc byte[MaxMethodLength + 1];
        var n = (int)Math.Min(buffer.Length, head.Length);
        buffer.Slice(0, n).CopyTo(head);
        if (head[0] == 0x16)
        {
            return SniffedProtocol.Tls;
        }

        for (var i = 0; i < n; i++)
        {
            var b = head[i];
            if (b == (byte)' ')
            {
                return i >= 3 ? SniffedProtocol.Http : SniffedProtocol.Other;
            }

            if (b is < (byte)'A' or > (byte)'Z')
            {
                return SniffedProtocol.Other;
            }
        }

        return n > MaxMethodLength ? SniffedProtocol.Other : null;
    }
}
