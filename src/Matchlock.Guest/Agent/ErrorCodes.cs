using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Agent;

/// <summary>Turns exceptions from file and system calls into the reply's errno-style code.</summary>
internal static class ErrorCodes
{
    internal static string FromException(Exception exception) => exception switch
    {
        NativeCallException native => FromErrno(native.Errno),
        FileNotFoundException or DirectoryNotFoundException => "ENOENT",
        UnauthorizedAccessException => "EACCES",
        PathTooLongException => "ENAMETOOLONG",
        ArgumentException => "EINVAL",
        IOException io when io.HResult is > 0 and < 200 => FromErrno(io.HResult),
        _ => "EIO",
    };

    internal static string FromErrno(int errno) => errno switch
    {
        Errno.EPERM => "EPERM",
        Errno.ENOENT => "ENOENT",
        Errno.EIO => "EIO",
        Errno.EACCES => "EACCES",
        Errno.EBUSY => "EBUSY",
        Errno.EEXIST => "EEXIST",
        Errno.ENOTDIR => "ENOTDIR",
        Errno.EISDIR => "EISDIR",
        Errno.EINVAL => "EINVAL",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        _ => $"E{errno}",
    };
}
