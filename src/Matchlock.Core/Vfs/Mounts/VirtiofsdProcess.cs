using Matchlock.Core.Vm;

namespace Matchlock.Core.Vfs.Mounts;

/// <summary>
/// For benchmarks only (<c>MATCHLOCK_VFS_BACKEND=virtiofsd</c>, bench/vfs): Debian's C virtiofsd
/// serving one host folder in place of our back-end, so the two can be measured side by side. It
/// has none of our hooks, ownership mapping or confinement (docs/VFS.md "vhost-user transport").
/// Started as a <see cref="ChildProcess"/> (dies with the owner); its log is <c>SOCKET.log</c>.
/// </summary>
internal sealed class VirtiofsdProcess : IAsyncDisposable
{
    public const string Program = "/usr/lib/qemu/virtiofsd";

    private readonly ChildProcess _process;

    private VirtiofsdProcess(ChildProcess process) => _process = process;

    /// <exception cref="IOException">virtiofsd is missing or did not create its socket within 10 s.</exception>
    public static async Task<VirtiofsdProcess> StartAsync(string socketPath, string folder, CancellationToken cancellationToken)
    {
        if (!File.Exists(Program))
        {
            throw new IOException($"{Program} is not installed (Debian's qemu-system-common)");
        }

        File.Delete(socketPath);
        var process = await ChildProcess.StartAsync(
            Program, [$"--socket-path={socketPath}", "-o", $"source={folder}", "-o", "cache=auto"], socketPath + ".log", cancellationToken);
        for (var i = 0; i < 200 && !File.Exists(socketPath); i++)
        {
            if (process.Exited.IsCompleted)
            {
                break;
            }

            await Task.Delay(50, cancellationToken);
        }

        if (!File.Exists(socketPath))
        {
            process.Kill();
            process.Dispose();
            throw new IOException($"virtiofsd did not create {socketPath} (see {socketPath}.log)");
        }

        return new VirtiofsdProcess(process);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.Exited.IsCompleted)
        {
            _process.Kill();
        }

        await ((Task)_process.Exited).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _process.Dispose();
    }
}
