using System.Buffers;
using System.Text;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Applies <c>body_replacements</c> to response bodies. On <c>text/event-stream</c> it works line by
/// line as bytes arrive and flushes after every read, so events reach the guest one by one (only
/// <c>data:</c> lines are rewritten); memory is bounded by the longest line. Other bodies are
/// buffered whole, up to a limit, and a larger body fails closed (the response becomes a 502 rather
/// than passing through unmodified). Replacements are byte-level on the UTF-8 encodings of find and
/// replace, so bodies that are not valid UTF-8 are never re-encoded.
/// </summary>
internal sealed class BodyRewriter
{
    private static readonly byte[] DataPrefix = "data:"u8.ToArray();

    private readonly (byte[] Find, byte[] Replace)[] _pairs;

    public BodyRewriter(IEnumerable<BodyReplacement> replacements)
    {
        _pairs = replacements.Where(r => r.Find.Length > 0)
            .Select(r => (Encoding.UTF8.GetBytes(r.Find), Encoding.UTF8.GetBytes(r.Replace)))
            .ToArray();
    }

    public async Task CopyEventStreamAsync(Stream source, Stream destination, int maxLineBytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var line = new ArrayBufferWriter<byte>();
        int n;
        while ((n = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            var chunk = buffer.AsMemory(0, n);
            int newline;
            while ((newline = chunk.Span.IndexOf((byte)'\n')) >= 0)
            {
                line.Write(chunk.Span[..(newline + 1)]);
                chunk = chunk[(newline + 1)..];
                await WriteLineAsync(line.WrittenMemory, destination, cancellationToken);
                line.ResetWrittenCount();
            }

            line.Write(chunk.Span);
            if (line.WrittenCount > maxLineBytes)
            {
                throw new InvalidOperationException($"an event-stream line exceeds {maxLineBytes} bytes; body_replacements cannot be applied");
            }

            await destination.FlushAsync(cancellationToken);
        }

        if (line.WrittenCount > 0)
        {
            await WriteLineAsync(line.WrittenMemory, destination, cancellationToken);
            await destination.FlushAsync(cancellationToken);
        }
    }

    /// <summary>Reads the whole body (at most <paramref name="maxBytes"/>) and returns it rewritten.</summary>
    public async Task<byte[]> RewriteWholeAsync(Stream source, int maxBytes, CancellationToken cancellationToken)
    {
        using var body = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (body.Length + n > maxBytes)
            {
                throw new InvalidOperationException($"the response body exceeds {maxBytes} bytes; body_replacements cannot be applied to it");
            }

            body.Write(buffer, 0, n);
        }

        return Apply(body.GetBuffer().AsSpan(0, (int)body.Length));
    }

    internal byte[] Apply(ReadOnlySpan<byte> input)
    {
        var current = input.ToArray();
        foreach (var (find, replace) in _pairs)
        {
            if (current.AsSpan().IndexOf(find) < 0)
            {
                continue;
            }

            var output = new ArrayBufferWriter<byte>(current.Length);
            ReadOnlySpan<byte> rest = current;
            int i;
            while ((i = rest.IndexOf(find)) >= 0)
            {
                output.Write(rest[..i]);
                output.Write(replace);
                rest = rest[(i + find.Length)..];
            }

            output.Write(rest);
            current = output.WrittenSpan.ToArray();
        }

        return current;
    }

    private ValueTask WriteLineAsync(ReadOnlyMemory<byte> line, Stream destination, CancellationToken cancellationToken) =>
        line.Span.StartsWith(DataPrefix)
            ? destination.WriteAsync(Apply(line.Span), cancellationToken)
            : destination.WriteAsync(line, cancellationToken);
}
