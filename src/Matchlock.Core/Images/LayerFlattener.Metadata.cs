using System.Formats.Tar;
using System.Text;

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

        if (entry is PaxTarEntry pax)
        {
            foreach (var (key, value) in pax.ExtendedAttributes)
            {
                if (XattrFromPax(key, value) is { } xattr)
                {
                    SetXattr(full, entry.Name, xattr.Name, xattr.Value);
                }
            }
        }

        if (entry.EntryType != TarEntryType.Directory)
        {
            LinuxNative.SetTimesNoFollow(full, entry.ModificationTime);
        }
    }

    private (string Name, byte[] Value)? XattrFromPax(string key, string value)
    {
        const string Schily = "SCHILY.xattr.";
        const string Libarchive = "LIBARCHIVE.xattr.";
        if (key.StartsWith(Schily, StringComparison.Ordinal))
        {
            // TarReader hands PAX values over as UTF-8-decoded strings; a binary value that is not
            // valid UTF-8 comes back with U+FFFD and cannot be restored byte for byte. Refuse
            // rather than write a corrupted attribute (e.g. a wrong security.capability).
            if (value.Contains('\uFFFD', StringComparison.Ordinal))
            {
                throw new ImageFormatException(
                    $"{_layer}: xattr \"{key[Schily.Length..]}\" has a binary value that is not supported yet; "
                    + "re-export the layer without it");
            }

            return (key[Schily.Length..], Encoding.UTF8.GetBytes(value));
        }

        if (key.StartsWith(Libarchive, StringComparison.Ordinal))
        {
            // bsdtar: URL-encoded name, base64 value.
            try
            {
                return (Uri.UnescapeDataString(key[Libarchive.Length..]), Convert.FromBase64String(value));
            }
            catch (FormatException e)
            {
                throw new ImageFormatException($"{_layer}: xattr record \"{key}\" is not valid base64", e);
            }
        }

        return null;
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
