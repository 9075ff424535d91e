namespace Matchlock.Core.Vfs;

/// <summary>
/// The one check every name from the guest passes before any provider uses it: a single path
/// component, so no name can climb (<c>..</c>), descend (<c>/</c>) or be cut short by the C string
/// it becomes (NUL). This is what keeps each <c>*at()</c> call inside its parent directory.
/// </summary>
internal static class VfsName
{
    /// <summary>NAME_MAX on Linux filesystems.</summary>
    public const int MaxLength = 255;

    /// <summary>
    /// <see cref="Errno.None"/> for a usable name; <see cref="Errno.ENAMETOOLONG"/> past 255 bytes;
    /// <see cref="Errno.EINVAL"/> for empty, <c>.</c>, <c>..</c>, or a name holding <c>/</c> or NUL.
    /// </summary>
    public static Errno Check(ReadOnlySpan<byte> name)
    {
        if (name.Length > MaxLength)
        {
            return Errno.ENAMETOOLONG;
        }

        if (name.IsEmpty || name.SequenceEqual("."u8) || name.SequenceEqual(".."u8) || name.IndexOfAny((byte)'/', (byte)0) >= 0)
        {
            return Errno.EINVAL;
        }

        return Errno.None;
    }
}
