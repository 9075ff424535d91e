using System.Buffers;
using System.IO.Pipelines;

namespace Matchlock.Core.Network.Proxy;

/// <summary>What the first bytes of a guest connection are.</summary>
internal enum SniffedProtocol
{
    /// <summary>A TLS record of type handshake (0x16): a ClientHello. Always intercepted.</summary>
    Tls,

    /// <summary>
    /// A strictly well-formed HTTP/1.x request line (<c>METHOD SP target SP HTTP/1.d CRLF</c>), or the
    /// HTTP/2 prior-knowledge preface. Always handed to Kestrel's parser.
    /// </summary>
    Http,

    /// <summary>Bytes that are neither: relayed only by an explicit raw TCP rule, else refused.</summary>
    Raw,

    /// <summary>Nothing (or an undecided prefix) arrived before the wait ended.</summary>
    Silent,

    /// <summary>The guest closed before a verdict.</summary>
    Closed,
}

/// <summary>
/// Classifies a connection by peeking at its first bytes without consuming them, so whichever
/// handler runs next (Kestrel's TLS, Kestrel's HTTP, the raw relay) sees the stream untouched.
/// </summary>
/// <remarks>
/// The classifier never falls open (docs/NETWORK.md "Classification"): a byte that a strict
/// request line would not contain makes the connection <see cref="SniffedProtocol.Raw"/> at once —
/// never "probably HTTP" — and what the caller does with Raw or Silent is a policy decision, not a
/// default. Lenient forms that some servers accept (a leading CRLF or space, a tab between the parts,
/// a bare LF) are Raw on purpose: forwarding them unparsed is how a foreign Host or a placeholder
/// would slip past the proxy, and parsing them "the way the upstream would" cannot be known.
/// </remarks>
internal static class ProtocolSniffer
{
    /// <summary>Longest request line we look at before deciding (Kestrel's default MaxRequestLineSize).</summary>
    internal const int MaxRequestLineLength = 8 * 1024;

    private static ReadOnlySpan<byte> Http2Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    private static ReadOnlySpan<byte> HttpVersionPrefix => "HTTP/1."u8;

    /// <summary>
    /// Waits up to <paramref name="wait"/> for a verdict; <see cref="SniffedProtocol.Silent"/> when the
    /// wait ends first. Consumes nothing.
    /// </summary>
    public static async ValueTask<SniffedProtocol> SniffAsync(PipeReader input, TimeSpan wait, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return SniffedProtocol.Silent;
            }

            var buffer = result.Buffer;
            var verdict = Classify(buffer);
            if (verdict is not null || result.IsCompleted || result.IsCanceled)
            {
                // Consume and examine nothing: the next reader gets every byte, immediately.
                input.AdvanceTo(buffer.Start);
                return verdict ?? (buffer.IsEmpty ? SniffedProtocol.Closed : SniffedProtocol.Raw);
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

        var length = (int)Math.Min(buffer.Length, MaxRequestLineLength + 2);
        var rented = length <= 512 ? null : ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> head = rented is null ? stackalloc byte[length] : rented.AsSpan(0, length);
            buffer.Slice(0, length).CopyTo(head);
            return Classify(head, buffer.Length > length);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static SniffedProtocol? Classify(ReadOnlySpan<byte> head, bool truncated)
    {
        if (head[0] == 0x16)
        {
            return SniffedProtocol.Tls;
        }

        var preface = Http2Preface;
        var common = Math.Min(head.Length, preface.Length);
        if (head[..common].SequenceEqual(preface[..common]))
        {
            return common == preface.Length ? SniffedProtocol.Http : null;
        }

        // METHOD: one or more token characters (RFC 9110 §5.6.2).
        var i = 0;
        while (i < head.Length && IsTokenChar(head[i]))
        {
            i++;
        }

        if (i == head.Length)
        {
            return NeedMore(head, truncated);
        }

        if (i == 0 || head[i] != (byte)' ')
        {
            return SniffedProtocol.Raw;
        }

        // request-target: visible characters (no SP, HTAB, CTL, DEL); obs-text left to Kestrel.
        var targetStart = ++i;
        while (i < head.Length && head[i] is > 0x20 and not 0x7f)
        {
            i++;
        }

        if (i == head.Length)
        {
            return NeedMore(head, truncated);
        }

        if (i == targetStart || head[i] != (byte)' ')
        {
            return SniffedProtocol.Raw;
        }

        // HTTP-version: exactly HTTP/1.d, then CRLF.
        i++;
        var version = HttpVersionPrefix;
        for (var k = 0; k < version.Length; k++, i++)
        {
            if (i == head.Length)
            {
                return NeedMore(head, truncated);
            }

            if (head[i] != version[k])
            {
                return SniffedProtocol.Raw;
            }
        }

        ReadOnlySpan<byte> tail = [(byte)'0', (byte)'\r', (byte)'\n'];
        for (var k = 0; k < 3; k++, i++)
        {
            if (i == head.Length)
            {
                return NeedMore(head, truncated);
            }

            var ok = k == 0 ? head[i] is (byte)'0' or (byte)'1' : head[i] == tail[k];
            if (!ok)
            {
                return SniffedProtocol.Raw;
            }
        }

        return SniffedProtocol.Http;
    }

    /// <summary>A valid prefix so far: wait for more, unless the line is already longer than we accept.</summary>
    private static SniffedProtocol? NeedMore(ReadOnlySpan<byte> head, bool truncated) =>
        truncated || head.Length > MaxRequestLineLength ? SniffedProtocol.Raw : null;

    /// <summary>tchar = "!" / "#" / "$" / "%" / "&amp;" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.</summary>
    private static bool IsTokenChar(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
            or (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\'' or (byte)'*' or (byte)'+'
            or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';
}
