using System.Formats.Tar;
using Matchlock.Core.Interop;

namespace Matchlock.Core.Images;

// Ownership, mode, xattrs and times of an entry, applied to the path itself (never a symlink's target).
internal sealed partial class LayerFlattener
{
    private void ApplyMetadata(string full, TarEntry entry, bool isSymlink)
    {
        // Order matters: chown clears setuid/setgid and file capabilities, so mode and xattrs follow it.
        LinuxNative.LChown(full, entry.Uid, entry.Gid);
        if (!isSymlink)
        {
            File.SetUnixFileMode(full, (UnixFileMode)((int)entry.Mode & 0xFFF /* 07777 */));
        }

        foreach (var xattr in TakeXattrs(entry))
        {
            SetXattr(full, entry.Name, xattr.Name, xattr.Value);
        }

        if (entry.EntryType != TarEntryType.Directory)
        {
            LinuxNative.SetTimesNoFollow(full, entry.ModificationTime);
        }
    }

    /// <summary>The entry's xattrs, exact bytes, as <see cref="PaxXattrStream"/> took them out of its PAX header.</summary>
    private IReadOnlyList<Xattr> TakeXattrs(TarEntry entry)
    {
        if (entry is not PaxTarEntry pax)
        {
            return [];
        }

        foreach (var key in pax.ExtendedAttributes.Keys)
        {
            if (PaxXattrStream.IsXattrKey(key))
            {
                // The stream removes every xattr record it sees; one reaching TarReader means it lost
                // the tar framing. Refuse rather than set a value that may have been UTF-8-mangled.
                throw new ImageFormatException(
                    $"{_layer}: entry \"{entry.Name}\" has xattr record \"{key}\" that the importer could not read "
                    + "byte for byte; refusing to import");
            }
        }

        return pax.ExtendedAttributes.TryGetValue(PaxXattrStream.TokenKey, out var token)
            ? _layerXattrs!.Take(token)
            : [];
    }

    private void SetXattr(string full, string entryName, string name, byte[] value)
    {
        var errno = LinuxNative.LSetXattr(full, name, value);
        if (errno == LinuxNative.ENOTSUP)
        {
            throw new ImageStoreException(
                $"{_layer}: entry \"{entryName}\" has xattr \"{name}\", but the store's filesystem does not support it; "
                + "put MATCHLOCK_HOME on ext4 or xfs");
        }

        if (errno != 0)
        {
            throw new IOException($"{_layer}: setting xattr \"{name}\" on \"{entryName}\" failed (errno {errno})");
        }
    }
}
