namespace Matchlock.Core.Vm;

/// <summary>
/// A running QEMU. Owns the process, the channel stream and the files QEMU's start created
/// (channel and QMP sockets, pid file); the console log and qemu.err stay for diagnostics and
/// belong to the WorkDir's owner.
/// </summary>
internal sealed class QemuVmInstance : IVmInstance
{
    private readonly ChildProcess _process;
    private readonly VmSpec _spec;
    private readonly string _pidPath;
    private int _disposed;

    public QemuVmInstance(ChildProcess process, Stream channel, VmSpec spec, string pidPath)
    {
        _process = process;
        Channel = channel;
        _spec = spec;
        _pidPath = pidPath;
    }

    public int Pid => _process.Pid;

    public Task<int> Exited => _process.Exited;

    public Stream Channel { get; }

    public Task<int> WaitForExitAsync(CancellationToken cancellationToken) => _process.Exited.WaitAsync(cancellationToken);

    public async Task KillAsync(CancellationToken cancellationToken)
    {
        _process.Kill();
        await _process.Exited.WaitAsync(cancellationToken);
    }

    public string ReadConsoleTail(int lines) => TextTail.Read(_spec.ConsoleLogPath, lines);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await Channel.DisposeAsync();
        _process.Kill();

        // SIGKILL cannot be caught; the wait only covers the kernel tearing the process down.
        // Not bounded by a token on purpose: returning before it is gone would break the
        // "disposed means no QEMU" guarantee.
        await _process.Exited;
        _process.Dispose();
        DeleteFiles(_spec, _pidPath);
    }

    internal static void DeleteFiles(VmSpec spec, string pidPath)
    {
        foreach (var path in (string[])[spec.ChannelSocketPath, spec.QmpSocketPath, pidPath])
        {
            try
            {
                File.Delete(path);
            }
            catch (DirectoryNotFoundException)
            {
                // The VM directory is already gone (removed by hand, or by rm of a dead owner's VM).
            }
        }
    }
}
