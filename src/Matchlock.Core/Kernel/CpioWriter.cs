using System.Buffers;
using System.Globalization;
using System.Text;

namespace Matchlock.Core.Kernel;

/// <summary>
/// Writes an uncompressed SVR4 "newc" cpio archive (magic <c>070701</c>), the format the kernel
/// unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
/// </summary>
/// <remarks>
/// Each entry is a 110-byte ASCII header, the NUL-terminated name padded so header+name is a
/// multiple of 4, then the data padded to a multiple of 4. Names are relative ("init", not
/// "/init"). Output is deterministic (mtime 0, inode numbers in write order, uid/gid 0) so the
/// same inputs give the same bytes. Parent directories are added automatically, once.
/// Not thread-safe: one writer per archive.
/// </remarks>
internal sealed class CpioWriter : IAsyncDisposable
{
    private const int HeaderSize = 110;
    private const int TypeDirectory = 0x4000; // S_IFDIR
    private const int TypeRegular = 0x8000;   // S_IFREG
    private const int TypeSymlink = 0xA000;   // S_IFLNK
    private const int TypeCharDevice = 0x2000; // S_IFCHR

    private readonly Stream _out;
    private readonly bool _leaveOpen;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal);
    private uint _nextIno = 1;
    private long _position;
    private bool _finished;

    public CpioWriter(Stream output, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        _out = output;
        _leaveOpen = leaveOpen;
    }

    public async Task AddDirectoryAsync(string path, int permissions, CancellationToken cancellationToken)
    {
        var name = Normalize(path);
        await EnsureParentsAsync(name, cancellationToken);
        if (_directories.Contains(name))
        {
            return;
        }

        await WriteEntryAsync(name, TypeDirectory | (permissions & 0xFFF), nlink: 2, ReadOnlyMemory<byte>.Empty, cancellationToken);
    }

    public async Task AddFileAsync(string path, ReadOnlyMemory<byte> content, int permissions, CancellationToken cancellationToken)
    {
        var name = Normalize(path);
        await EnsureParentsAsync(name, cancellationToken);
        await WriteEntryAsync(name, TypeRegular | (permissions & 0xFFF), nlink: 1, content, cancellationToken);
    }

    /// <summary>Adds a host file's bytes under <paramref name="path"/>; mode is given, not copied.</summary>
    public async Task AddHostFileAsync(string path, string hostPath, int permissions, CancellationToken cancellationToken)
    {
        // Initramfs members are small (the guest binary is a few MB, modules tens of KB), so
        // reading whole files keeps the size in the header and the bytes written in agreement
        // even if the file changes while we read it.
        var bytes = await File.ReadAllBytesAsync(hostPath, cancellationToken);
        await AddFileAsync(path, bytes, permissions, cancellationToken);
    }

    public async Task AddSymlinkAsync(string path, string target, CancellationToken cancellationToken)
    {
        var name = Normalize(path);
        await EnsureParentsAsync(name, cancellationToken);
        await WriteEntryAsync(name, TypeSymlink | 0x1FF, nlink: 1, Encoding.UTF8.GetBytes(target), cancellationToken);
    }

    public async Task AddCharDeviceAsync(string path, int permissions, int major, int minor, CancellationToken cancellationToken)
    {
        var name = Normalize(path);
        await EnsureParentsAsync(name, cancellationToken);
        await WriteEntryAsync(name, TypeCharDevice | (permissions & 0xFFF), nlink: 1, ReadOnlyMemory<byte>.Empty, cancellationToken, (uint)major, (uint)minor);
    }

    /// <summary>Writes the <c>TRAILER!!!</c> entry; no entries may follow.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (_finished)
        {
            return;
        }

        await WriteHeaderAndNameAsync("TRAILER!!!", ino: 0, mode: 0, nlink: 1, size: 0, 0, 0, cancellationToken);
        _finished = true;
        await _out.FlushAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_leaveOpen)
        {
            await _out.DisposeAsync();
        }
    }

    private async Task EnsureParentsAsync(string name, CancellationToken cancellationToken)
    {
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        while (slash > 0)
        {
            var parent = name[..slash];
            if (_names.Contains(parent) && !_directories.Contains(parent))
            {
                throw new InvalidOperationException($"cannot add '{name}': '{parent}' is not a directory");
            }

            if (!_names.Contains(parent))
            {
                await WriteEntryAsync(parent, TypeDirectory | 0x1ED /* 0755 */, nlink: 2, ReadOnlyMemory<byte>.Empty, cancellationToken);
            }

            slash = name.IndexOf('/', slash + 1);
        }
    }

    private async Task WriteEntryAsync(
        string name, int mode, int nlink, ReadOnlyMemory<byte> data, CancellationToken cancellationToken, uint rdevMajor = 0, uint rdevMinor = 0)
    {
        if (_finished)
        {
            throw new InvalidOperationException("the archive is already finished");
        }

        if (!_names.Add(name))
        {
            throw new InvalidOperationException($"duplicate cpio entry '{name}'");
        }

        if ((mode & 0xF000) == TypeDirectory)
        {
            _directories.Add(name);
        }

        await WriteHeaderAndNameAsync(name, _nextIno++, mode, nlink, data.Length, rdevMajor, rdevMinor, cancellationToken);
        await _out.WriteAsync(data, cancellationToken);
        _position += data.Length;
        await PadAsync(cancellationToken);
    }

    private async Task WriteHeaderAndNameAsync(
        string name, uint ino, int mode, int nlink, long size, uint rdevMajor, uint rdevMinor, CancellationToken cancellationToken)
    {
        if (size > uint.MaxValue)
        {
            throw new InvalidOperationException($"'{name}' is too large for a newc cpio entry (4 GiB max)");
        }

        var nameBytes = Encoding.UTF8.GetBytes(name);
        var sb = new StringBuilder(HeaderSize);
        sb.Append("070701");
        foreach (var field in (ReadOnlySpan<uint>)[
            ino, (uint)mode, 0 /* uid */, 0 /* gid */, (uint)nlink, 0 /* mtime */, (uint)size,
            0 /* devmajor */, 0 /* devminor */, rdevMajor, rdevMinor,
            (uint)nameBytes.Length + 1 /* NUL */, 0 /* check */])
        {
            sb.Append(field.ToString("X8", CultureInfo.InvariantCulture));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(HeaderSize + nameBytes.Length + 1);
        try
        {
            var n = Encoding.ASCII.GetBytes(sb.ToString(), buffer);
            nameBytes.CopyTo(buffer, n);
            n += nameBytes.Length;
            buffer[n++] = 0;
            await _out.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            _position += n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await PadAsync(cancellationToken);
    }

    private async Task PadAsync(CancellationToken cancellationToken)
    {
        var pad = (int)((4 - (_position % 4)) % 4);
        if (pad > 0)
        {
            await _out.WriteAsync(new byte[pad], cancellationToken);
            _position += pad;
        }
    }

    /// <summary>
    /// "/lib/x.ko" → "lib/x.ko". Rejects empty names, "." / ".." components and NULs: an
    /// initramfs must not be able to name anything outside its own root.
    /// </summary>
    internal static string Normalize(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Any(p => p is "." or ".." || p.Contains('\0', StringComparison.Ordinal)))
        {
            throw new ArgumentException($"invalid archive path '{path}'", nameof(path));
        }

        return string.Join('/', parts);
    }
}
