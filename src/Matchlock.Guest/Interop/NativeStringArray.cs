using System.Runtime.InteropServices;
using System.Text;

namespace Matchlock.Guest.Interop;

/// <summary>
/// A NULL-terminated char*[] of NUL-terminated UTF-8 strings in native memory, as execve and
/// posix_spawn want for argv and envp. Owns the memory until Dispose.
/// </summary>
internal sealed unsafe class NativeStringArray : IDisposable
{
    private byte** _array;
    private readonly int _count;

    internal NativeStringArray(IReadOnlyList<string> values)
    {
        _count = values.Count;
        _array = (byte**)NativeMemory.AllocZeroed((nuint)(_count + 1), (nuint)sizeof(byte*));
        for (var i = 0; i < _count; i++)
        {
            _array[i] = AllocUtf8(values[i]);
        }
    }

    /// <summary>The array; valid until Dispose.</summary>
    internal byte** Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(_array == null, this);
            return _array;
        }
    }

    /// <summary>A NUL-terminated UTF-8 copy the caller frees with NativeMemory.Free.</summary>
    internal static byte* AllocUtf8(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("Arguments and environment entries cannot contain NUL characters.", nameof(value));
        }

        var length = Encoding.UTF8.GetByteCount(value);
        var buffer = (byte*)NativeMemory.Alloc((nuint)length + 1);
        Encoding.UTF8.GetBytes(value, new Span<byte>(buffer, length));
        buffer[length] = 0;
        return buffer;
    }

    public void Dispose()
    {
        if (_array == null)
        {
            return;
        }

        for (var i = 0; i < _count; i++)
        {
            NativeMemory.Free(_array[i]);
        }

        NativeMemory.Free(_array);
        _array = null;
    }
}
