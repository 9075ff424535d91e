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
/// <remarks>
/// For a terminal the pump also applies the stream's controls (resize, signals) until stdin ends,
/// in the order the host sent them relative to the input: a resize sent before a line must be in
/// effect when the program reads that line (<c>stty size</c> after <c>read</c>). Controls that
/// arrived before a chunk of input are queued before it (one reader fills both queues in frame
/// order), so draining the controls after each read and before the write keeps that order.
/// </remarks>
internal sealed class InputPump
{
    private const byte EndOfTransmission = 0x04;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="applyControl">Terminals: applies one control message; the pump owns the stream's controls until <see cref="Done"/>.</param>
    internal InputPump(MuxStream stream, Stream target, bool isTerminal, CancellationToken stop, Action<ReadOnlyMemory<byte>>? applyControl = null)
    {
        var thread = new Thread(() => Run(stream, target, isTerminal, stop, applyControl), maxStackSize: 256 * 1024)
        {
            IsBackground = true,
            Name = "matchlock stdin",
        };
        thread.Start();
    }

    /// <summary>Completes when the pump has stopped (stdin ended, or the exec finished).</summary>
    internal Task Done => _done.Task;

    private void Run(MuxStream stream, Stream target, bool isTerminal, CancellationToken stop, Action<ReadOnlyMemory<byte>>? applyControl)
    {
        try
        {
            Pump(stream, target, isTerminal, stop, applyControl);
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    private static void Pump(MuxStream stream, Stream target, bool isTerminal, CancellationToken stop, Action<ReadOnlyMemory<byte>>? applyControl)
    {
        var buffer = new byte[32 * 1024];
        var writing = true;
        Task<bool>? controlWait = null; // at most one pending wait on the controls
        try
        {
            while (true)
            {
                var read = stream.ReadAsync(StreamChannel.Stdin, buffer, stop).AsTask();
                if (applyControl is not null)
                {
                    while (!read.IsCompleted)
                    {
                        controlWait ??= stream.Controls.WaitToReadAsync(stop).AsTask();
                        Task.WaitAny(read, controlWait);
                        if (controlWait.IsCompletedSuccessfully && controlWait.Result)
                        {
                            controlWait = null;
                            DrainControls(stream, applyControl);
                        }
                        else if (controlWait.IsCompleted)
                        {
                            read.Wait(stop); // no more controls will come: just the input now
                        }
                    }
                }

                var n = read.GetAwaiter().GetResult();
                if (applyControl is not null)
                {
                    DrainControls(stream, applyControl); // everything sent before this input
                }

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
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or AggregateException)
        {
            // The exec finished, or the stream was reset: nothing more to deliver.
        }
        finally
        {
            if (!isTerminal)
            {
                target.Dispose(); // EOF for the command
            }
        }
    }

    private static void DrainControls(MuxStream stream, Action<ReadOnlyMemory<byte>> applyControl)
    {
        while (stream.Controls.TryRead(out var message))
        {
            applyControl(message);
        }
    }
}
