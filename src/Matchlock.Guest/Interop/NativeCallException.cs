using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>A libc call failed; carries errno so callers can tell expected failures apart.</summary>
internal sealed class NativeCallException : IOException
{
    internal NativeCallException(string operation, int errno)
        : base($"{operation}: {Describe(errno)}")
    {
        Errno = errno;
    }

    internal int Errno { get; }

    /// <summary>Throws for the errno the last P/Invoke saved (SetLastError = true).</summary>
    internal static NativeCallException FromLastError(string operation) =>
        new(operation, Marshal.GetLastPInvokeError());

    /// <summary>strerror text plus the number, e.g. "No such file or directory (errno 2)".</summary>
    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
