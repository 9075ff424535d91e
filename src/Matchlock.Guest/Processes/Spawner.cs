using System.Globalization;
using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Processes;

/// <summary>
/// Starts commands with posix_spawn (vfork-style; no fork from managed code, which would copy a
/// multi-threaded runtime). Identity switches need setgroups/setgid/setuid, which posix_spawn
/// cannot do, so those run through our own binary re-executed as a tiny helper
/// (<see cref="ExecAsHelper"/>) that switches and then execs the command in the same process.
/// </summary>
internal sealed unsafe class Spawner
{
    private readonly Reaper _reaper;
    private readonly string? _execAsHelperPath;
    private readonly ChildPlacement _placement;

    /// <param name="reaper">The process-wide reaper.</param>
    /// <param name="execAsHelperPath">
    /// Our own binary. In the guest "/proc/self/exe", which keeps working after the chroot because
    /// it is a magic link, not a path lookup. Null disables user switching (tests without a
    /// published binary).
    /// </param>
    /// <param name="placement">Where every child goes right after the spawn (the sandbox cgroup); default: nowhere.</param>
    internal Spawner(Reaper reaper, string? execAsHelperPath, ChildPlacement? placement = null)
    {
        _reaper = reaper;
        _execAsHelperPath = execAsHelperPath;
        _placement = placement ?? ChildPlacement.None;
    }

    internal ChildProcess Spawn(SpawnSpec spec)
    {
        var needsHelper = !spec.User.IsPlainRoot;
        if (needsHelper && _execAsHelperPath is null)
        {
            throw new SpawnException(126, "exec: running as another user needs the matchlock-guest helper, which is not available here");
        }

        Pty? pty = null;
        SafeFileHandle? stdinRead = null, stdinWrite = null, stdoutRead = null, stdoutWrite = null, stderrRead = null, stderrWrite = null;
        try
        {
            using var actions = new SpawnFileActions();
            using var attributes = new SpawnAttributes(newSession: spec.Tty);
            if (spec.Tty)
            {
                pty = Pty.Open(spec.Rows, spec.Columns);
                if (spec.User.Uid != 0)
                {
                    pty.GiveSlaveTo(spec.User.Uid);
                }

                // No O_NOCTTY: a session leader without a terminal that opens one gets it as its
                // controlling terminal (SETSID already ran, see SpawnAttributes).
                actions.AddOpen(0, pty.SlavePath, LibcConstants.O_RDWR);
                actions.AddDup2(0, 1);
                actions.AddDup2(0, 2);
            }
            else
            {
                if (spec.Stdin)
                {
                    (stdinRead, stdinWrite) = FileDescriptors.CreatePipe();
                    actions.AddDup2(Fd(stdinRead), 0);
                }
                else
                {
                    actions.AddOpen(0, "/dev/null", LibcConstants.O_RDONLY);
                }

                (stdoutRead, stdoutWrite) = FileDescriptors.CreatePipe();
                (stderrRead, stderrWrite) = FileDescriptors.CreatePipe();
                actions.AddDup2(Fd(stdoutWrite), 1);
                actions.AddDup2(Fd(stderrWrite), 2);
            }

            // Everything else we hold is O_CLOEXEC already; this also covers fds opened by code
            // we do not control (the runtime), so the command sees exactly 0, 1 and 2.
            actions.AddCloseFrom(3);
            actions.AddChdir(spec.WorkingDirectory);

            var path = needsHelper ? _execAsHelperPath! : spec.Path;
            var argv = needsHelper ? ExecAsHelper.BuildArguments(spec.User, spec.Path, spec.Arguments, _placement.CgroupProcsPath) : spec.Arguments;

            int pid;
            int error;
            Task<ExitStatus>? exited = null;
            using (var argvNative = new NativeStringArray(argv))
            using (var envNative = new NativeStringArray(spec.Environment))
            using (_reaper.BeginSpawn())
            {
                var pathNative = NativeStringArray.AllocUtf8(path);
                try
                {
                    error = Libc.posix_spawn(&pid, pathNative, actions.Pointer, attributes.Pointer, argvNative.Pointer, envNative.Pointer);
                }
                finally
                {
                    System.Runtime.InteropServices.NativeMemory.Free(pathNative);
                }

                if (error == 0)
                {
                    // First thing: into the sandbox cgroup (see ChildPlacement for the race this
                    // leaves). The pid cannot be reaped and reused before Register: BeginSpawn holds the reaper.
                    _placement.Place(pid);
                    exited = _reaper.Register(pid);
                }
            }

            if (error != 0)
            {
                throw new SpawnException(error == Errno.ENOENT ? 127 : 126, $"exec: {spec.Path}: {Describe(error)}");
            }

            // The child has its copies; ours would keep the pipes open (no EOF) if we kept them.
            stdinRead?.Dispose();
            stdoutWrite?.Dispose();
            stderrWrite?.Dispose();
            return new ChildProcess(
                _reaper,
                pid,
                exited!,
                stdinWrite is null ? null : new FdStream(stdinWrite, FileAccess.Write),
                stdoutRead is null ? null : new FdStream(stdoutRead, FileAccess.Read),
                stderrRead is null ? null : new FdStream(stderrRead, FileAccess.Read),
                pty);
        }
        catch
        {
            pty?.Dispose();
            stdinRead?.Dispose();
            stdinWrite?.Dispose();
            stdoutRead?.Dispose();
            stdoutWrite?.Dispose();
            stderrRead?.Dispose();
            stderrWrite?.Dispose();
            throw;
        }
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static string Describe(int error) => error switch
    {
        Errno.ENOENT => "no such file or directory",
        Errno.EACCES => "permission denied",
        Errno.ENOEXEC => "exec format error",
        _ => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(error).ToLower(CultureInfo.InvariantCulture),
    };
}
