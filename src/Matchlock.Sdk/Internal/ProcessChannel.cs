using System.ComponentModel;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// <c>$MATCHLOCK_BIN rpc</c> as a child process (optionally through <c>sudo</c>): requests on its
/// stdin, answers on its stdout; its stderr is kept (the last few KiB) to explain a failure.
/// </summary>
internal sealed class ProcessChannel : IRpcChannel
{
    private const int StderrTail = 4096;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new(); // guarded by itself: the drain task appends, error paths read
    private readonly Task _stderrDrain;

    private ProcessChannel(Process process)
    {
        _process = process;
        Output = PipeReader.Create(process.StandardOutput.BaseStream, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        Input = process.StandardInput.BaseStream;
        _stderrDrain = Task.Run(DrainStderrAsync);
        Exited = WaitForExitAsync();
    }

    public PipeReader Output { get; }

    public Stream Input { get; }

    public Task Exited { get; }

    public string Diagnostics
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString().Trim();
            }
        }
    }

    /// <summary>Starts <c><paramref name="binary"/> rpc</c>.</summary>
    /// <exception cref="MatchlockSandboxException">The binary could not be started.</exception>
    public static ProcessChannel Start(string binary, bool useSudo)
    {
        var start = CommandLine.StartInfo(binary, useSudo, ["rpc"]);
        start.RedirectStandardInput = true;
        try
        {
            var process = Process.Start(start) ?? throw new MatchlockSandboxException($"could not start '{binary} rpc'");
            return new ProcessChannel(process);
        }
        catch (Win32Exception ex)
        {
            throw new MatchlockSandboxException(
                $"could not start '{start.FileName}' ({ex.Message}); install matchlock or point MATCHLOCK_BIN (or MatchlockClientOptions.BinaryPath) at it",
                ex);
        }
    }

    public async ValueTask CloseInputAsync()
    {
        try
        {
            await Input.DisposeAsync();
        }
        catch (IOException)
        {
            // The process already went away and its stdin pipe is broken: the input is closed either way.
        }
    }

    public async ValueTask KillAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited between our decision and the kill.
        }

        await Exited;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        await _stderrDrain;
        _process.Dispose();
    }

    private async Task WaitForExitAsync()
    {
        await _process.WaitForExitAsync();

        // Its last stderr words explain the exit; a grandchild holding the pipe open must not hold us.
        await Task.WhenAny(_stderrDrain, Task.Delay(TimeSpan.FromSeconds(1)));
    }

    private async Task DrainStderrAsync()
    {
        var reader = _process.StandardError;
        var buffer = new char[1024];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0)
        {
            lock (_stderr)
            {
                _stderr.Append(buffer, 0, n);
                if (_stderr.Length > StderrTail)
                {
                    _stderr.Remove(0, _stderr.Length - StderrTail);
                }
            }
        }
    }
}
