using System.Globalization;
using System.Text;

namespace Matchlock.Core.Vfs;

/// <summary>
/// The owner and mode the guest gave a host file, kept beside it in the xattr
/// <c>user.matchlock.owner</c> as <c>uid:gid:mode</c> (decimal ids, octal mode with type bits
/// excluded), like virtiofsd's xattr mapping. The host file itself stays the folder owner's with
/// plain permission bits; the guest sees these values instead.
/// </summary>
internal readonly record struct OwnershipXattr(uint Uid, uint Gid, uint Mode)
{
    public const string Name = "user.matchlock.owner";

    public byte[] Format() =>
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{Uid}:{Gid}:{Convert.ToString(Mode & VfsMode.PermissionMask, 8)}"));

    /// <summary>Parses the attribute; null for anything malformed (then the host's values stand).</summary>
    public static OwnershipXattr? Parse(ReadOnlySpan<byte> value)
    {
        Span<char> text = stackalloc char[64];
        if (value.Length > text.Length || Encoding.ASCII.GetChars(value, text) is var n && n != value.Length)
        {
            return null;
        }

        Span<Range> parts = stackalloc Range[4];
        var chars = text[..value.Length];
        if (chars.Split(parts, ':') != 3
            || !uint.TryParse(chars[parts[0]], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
            || !uint.TryParse(chars[parts[1]], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
        {
            return null;
        }

        uint mode = 0;
        var octal = chars[parts[2]];
        if (octal.IsEmpty || octal.Length > 6)
        {
            return null;
        }

        foreach (var c in octal)
        {
            if (c is < '0' or > '7')
            {
                return null;
            }

            mode = (mode * 8) + (uint)(c - '0');
        }

        return mode > VfsMode.PermissionMask ? null : new OwnershipXattr(uid, gid, mode);
    }
}
