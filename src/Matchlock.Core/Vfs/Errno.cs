namespace Matchlock.Core.Vfs;

/// <summary>
/// Linux errno values, as a VFS operation answers them to the guest's kernel (a FUSE reply carries
/// the negated value). Host syscalls' errnos pass through unchanged, so a value outside the named
/// ones is still meaningful.
/// </summary>
internal enum Errno
{
    /// <summary>Success.</summary>
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    EIO = 5,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EEXIST = 17,
    EXDEV = 18,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    EFBIG = 27,
    ENOSPC = 28,
    EROFS = 30,
    EMLINK = 31,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENODATA = 61,
    EOPNOTSUPP = 95,
    ESTALE = 116,
}

/// <summary>
/// What a VFS operation produced: a value, or the errno the guest gets instead. Expected failures
/// (ENOENT on a compiler's include-path probe, EEXIST, EROFS) are values on the hot path, never
/// exceptions; providers throw only for bugs.
/// </summary>
internal readonly struct VfsResult<T>
{
    private readonly T? _value;

    private VfsResult(T? value, Errno error)
    {
        _value = value;
        Error = error;
    }

    /// <summary>The errno; <see cref="Errno.None"/> when the operation succeeded.</summary>
    public Errno Error { get; }

    public bool IsOk => Error == Errno.None;

    /// <summary>The result; throws when the operation failed (a caller that skipped the check has a bug).</summary>
    public T Value => IsOk ? _value! : throw new InvalidOperationException($"the VFS operation failed with {Error}; check IsOk first");

    public static implicit operator VfsResult<T>(T value) => new(value, Errno.None);

    public static implicit operator VfsResult<T>(Errno error) =>
        error == Errno.None ? throw new ArgumentException("a failed result needs an errno", nameof(error)) : new(default, error);

    public override string ToString() => IsOk ? $"Ok({_value})" : Error.ToString();
}
