namespace Matchlock.Cli.Terminal;

/// <summary>Our own stdio, for relaying a guest command's streams.</summary>
internal static class StdioStreams
{
    /// <summary>
    /// fd 0 itself. Console.OpenStandardInput() on a terminal is .NET's line-editing reader, which
    /// sets its own terminal mode and echoes what it reads (doubling the guest's echo).
    /// </summary>
    public static FileStream OpenStdin() =>
        new(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0);

    /// <summary>Copies to the end, flushing after every read so output appears as the guest writes it.</summary>
    public static async Task CopyFlushingAsync(Stream from, Stream to)
    {
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await from.ReadAsync(buffer)) > 0)
        {
            await to.WriteAsync(buffer.AsMemory(0, n));
            await to.FlushAsync();
        }
    }
}
