using System.IO.Compression;
using System.Security.Cryptography;

namespace Matchlock.Core.Images;

/// <summary>Compression detection by magic bytes (never by file name or media type: registries and tools mislabel) and digests.</summary>
internal static class LayerStreams
{
    private static ReadOnlySpan<byte> GzipMagic => [0x1f, 0x8b];
    private static ReadOnlySpan<byte> ZstdMagic => [0x28, 0xb5, 0x2f, 0xfd];
    private static ReadOnlySpan<byte> XzMagic => [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
    private static ReadOnlySpan<byte> Bzip2Magic => "BZh"u8;

    /// <summary>
    /// Wraps <paramref name="input"/> in a decompressor chosen from its first bytes. The returned
    /// stream disposes <paramref name="input"/> unless <paramref name="leaveOpen"/>. Works on
    /// non-seekable streams.
    /// </summary>
    public static async Task<Stream> OpenDecompressedAsync(Stream input, string what, bool leaveOpen, CancellationToken cancellationToken)
    {
        var head = new byte[6];
        var read = 0;
        while (read < head.Length)
        {
            var n = await input.ReadAsync(head.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        var prefix = head.AsSpan(0, read);
        var stream = new PrefixedReadStream(head[..read], input, leaveOpen);
        if (prefix.StartsWith(GzipMagic))
        {
            return new GZipStream(stream, CompressionMode.Decompress, leaveOpen: false);
        }

        if (prefix.StartsWith(ZstdMagic))
        {
            return new ZstdSharp.DecompressionStream(stream, leaveOpen: false);
        }

        var unsupported = prefix.StartsWith(XzMagic) ? "xz"
            : prefix.StartsWith(Bzip2Magic) ? "bzip2"
            : null;
        if (unsupported is not null)
        {
            await stream.DisposeAsync();
            throw new ImageFormatException(
                $"{what} is {unsupported}-compressed; {unsupported} layers not supported (gzip, zstd and uncompressed are); "
                + "re-export the image with gzip or zstd layers");
        }

        return stream;
    }

    /// <summary>Lower-case hex SHA-256 of a file.</summary>
    public static async Task<string> Sha256FileAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: false);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
    }

    /// <summary>True for <c>sha256:</c> followed by 64 lower-case hex digits (the only digests we accept).</summary>
    public static bool IsSha256Digest(string? digest) =>
        digest is { Length: 71 } && digest.StartsWith("sha256:", StringComparison.Ordinal)
        && digest.AsSpan(7).IndexOfAnyExcept("0123456789abcdef") < 0;

    /// <summary>Short form for messages: <c>sha256:0123456789ab…</c>.</summary>
    public static string Short(string digest) =>
        digest.Length > 19 ? digest[..19] + "…" : digest;
}
