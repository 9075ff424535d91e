using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Core.Volumes;

/// <summary>
/// The host's few dealings with ext4 images: formatting a new sparse one, and reading two fields
/// of a superblock. Nothing more: an image a guest wrote is untrusted input, so the host never
/// parses it further (no fsck, no mount).
/// </summary>
/// <remarks>
/// Reads and sizes go through the caller's descriptor (the one holding the image's flock), never
/// a new <see cref="FileStream"/>: .NET takes an flock of its own on every file it opens, which
/// would conflict with the lock we hold and with other sandboxes' locks.
/// </remarks>
internal static class Ext4Image
{
    // The superblock (Documentation/filesystems/ext4/super.rst): 1024 bytes into the device.
    private const int SuperblockOffset = 1024;
    private const int MagicOffset = 0x38;
    private const int IncompatOffset = 0x60;
    private const ushort Magic = 0xEF53;
    private const uint IncompatRecover = 0x4; // the journal holds transactions not yet written back

    /// <summary>
    /// Formats the empty file <paramref name="path"/> (open as <paramref name="handle"/>) as a
    /// sparse ext4 of <paramref name="sizeMb"/> MB. Deletes nothing on failure: the caller owns the file.
    /// </summary>
    public static async Task FormatAsync(SafeFileHandle handle, string path, long sizeMb, CancellationToken cancellationToken)
    {
        RandomAccess.SetLength(handle, sizeMb * 1024 * 1024);

        // As the original's `mkfs.ext4 -F -q`, plus: lazy_*_init (the file is sparse, so the
        // inode tables and journal already read as zeros: formatting takes ~10 ms and the file
        // stays sparse whatever its size) and -m 0 (no blocks reserved for root in a data disk).
        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync(
                "mkfs.ext4",
                ["-F", "-q", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", path],
                environment: null,
                cancellationToken);
        }
        catch (FileNotFoundException ex)
        {
            throw new VolumeException("mkfs.ext4 was not found; install e2fsprogs (./setup.sh does)", ex);
        }

        if (result.ExitCode != 0)
        {
            throw new VolumeException($"formatting a {sizeMb} MB ext4 image failed (mkfs.ext4 exit {result.ExitCode}): {result.StandardError.Trim()}");
        }
    }

    /// <summary>True when the file starts like an ext2/3/4 filesystem (the ext4 driver mounts all three).</summary>
    public static bool HasSuperblock(SafeFileHandle image) => ReadSuperblock(image) is { } sb && BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(MagicOffset)) == Magic;

    /// <summary>True when a writer stopped without unmounting: the journal must be replayed (by a writable mount) before a read-only mount works.</summary>
    public static bool NeedsRecovery(SafeFileHandle image) =>
        ReadSuperblock(image) is { } sb
        && BinaryPrimitives.ReadUInt16LittleEndian(sb.AsSpan(MagicOffset)) == Magic
        && (BinaryPrimitives.ReadUInt32LittleEndian(sb.AsSpan(IncompatOffset)) & IncompatRecover) != 0;

    private static byte[]? ReadSuperblock(SafeFileHandle image)
    {
        var buffer = new byte[1024];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = RandomAccess.Read(image, buffer.AsSpan(read), SuperblockOffset + read);
            if (n == 0)
            {
                return null; // shorter than a superblock: not a filesystem
            }

            read += n;
        }

        return buffer;
    }
}
