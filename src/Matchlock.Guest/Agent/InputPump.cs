using System.Buffers;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Copies the exec stream's stdin channel into the command, on a dedicated thread (a write to a
/// full pipe blocks until the command reads). At the host's EOF the pipe is closed; a PTY has
/// no half-close, so EOF there is the terminal's EOF character (^D), as a terminal user would
/// type it. If the command stops reading (EPIPE), the rest is read and dropped so the host's
/// credit keeps flowing.
/// </summary>
internal sealed class InputPump
{
    private const byte EndOfTransmission = 0x04;

    /// <param name="beforeWrite">Runs before each write to the command: applies the controls that arrived ahead of the data (<see cref="ExecControls"/>).</param>
    internal InputPump(MuxStream stream, Stream target, bool isTerminal, Action beforeWrite, CancellationToken stop)
    {
        PumpThreads.Shared.Start(() => Run(stream, target, isTerminal, beforeWrite, stop));
    }

    private static void Run(MuxStream stream, Stream target, bool isTerminal, Action beforeWrite, CancellationToken stop)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(32 * 1024); // pooled, as OutputPump's
        var writing = true;
        try
        {
            while (true)
            {
                var n = stream.ReadAsync(StreamChannel.Stdin, buffer, stop).AsTask().GetAwaiter().GetResult();
                if (n == 0)
                {
                    break;
                }

                if (!writing)
                {
                    continue;
                }

                try
                {
                    beforeWrite();
                    target.Write(buffer, 0, n);
                }
                catch (IOException)
                {
                    writing = false; // the command closed its stdin or exited
                }
            }

            if (writing && isTerminal)
            {
                target.Write([EndOfTransmission]);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The exec finished, or the stream was reset: nothing more to deliver.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (!isTerminal)
            {
                target.Dispose(); // EOF for the command
            }
        }
    }
}
