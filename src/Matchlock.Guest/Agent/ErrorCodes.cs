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

    /// <summary>
    /// What went wrong, in words: strerror's text for the code. Not the exception's message: the
    /// NativeAOT guest has no resource strings, so .NET's own messages read "IO_PathNotFound_Path".
    /// Our own native-call errors already say what they were doing.
    /// </summary>
    internal static string Describe(Exception exception) => exception is NativeCallException ? exception.Message : FromException(exception) switch
    {
        "ENOENT" => "no such file or directory",
        "EACCES" => "permission denied",
        "EPERM" => "operation not permitted",
        "EISDIR" => "is a directory",
        "ENOTDIR" => "not a directory",
        "EEXIST" => "file exists",
        "EBUSY" => "device or resource busy",
        "ENOSPC" => "no space left on device",
        "EROFS" => "read-only file system",
        "ENAMETOOLONG" => "file name too long",
        "EINVAL" => "invalid argument",
        var code => $"input/output error ({code})",
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
