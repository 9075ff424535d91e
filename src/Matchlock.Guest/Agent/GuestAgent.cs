using System.Diagnostics;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Processes;
using Matchlock.Protocol;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Serves the host over one <see cref="MuxConnection"/>: sends hello, then handles every stream
/// the host opens on its own task, concurrently (the mux runs each handler separately). A handler
/// that throws gets its stream reset by the mux; expected failures are replies with an error code.
/// </summary>
internal sealed class GuestAgent
{
    private readonly ConfigureHandler _configure;
    private readonly ExecHandler _exec;
    private readonly VfsMountHandler _vfs;
    private readonly TaskCompletionSource<TimeSpan> _shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="cgroups">The guest's cgroup layout: commands run in its sandbox group and
    /// configure sets its limits. Null: commands stay in our group (tests of other parts).</param>
    /// <param name="resetOomScore">Children inherit our oom_score_adj; true when ours was lowered and theirs must go back to 0.</param>
    /// <param name="fuse">The fuse module kept from the initramfs for the first vfs_mount; null: only a kernel that has fuse already can mount.</param>
    internal GuestAgent(Reaper reaper, AgentOptions options, CgroupLayout? cgroups = null, bool resetOomScore = false, FuseModule? fuse = null)
    {
        _vfs = new VfsMountHandler(options.Root, fuse ?? FuseModule.None);
        _configure = new ConfigureHandler(options, cgroups);
        var spawner = new Spawner(reaper, options.ExecAsHelperPath, new ChildPlacement(cgroups, resetOomScore));
        var launcher = new CommandLauncher(spawner, options.Root, () => _configure.Hostname);
        _exec = new ExecHandler(launcher);
    }

    private int _served; // 1 once the host opened any stream: it really was there

    /// <summary>True once a host has sent at least one request over any session.</summary>
    internal bool HostWasServed => Volatile.Read(ref _served) == 1;

    /// <summary>Completes with the requested grace once the host asked to shut down (after the reply went out).</summary>
    internal Task<TimeSpan> ShutdownRequested => _shutdown.Task;

    /// <summary>
    /// Serves one connection until the link ends (false) or the host asked for shutdown (true).
    /// <paramref name="link"/> is owned by the connection and disposed with it.
    /// </summary>
    internal async Task<bool> ServeAsync(Stream link, GuestHello hello, CancellationToken cancellationToken)
    {
        var connection = new MuxConnection(link, isHost: false, HandleAsync);
        await using (connection)
        {
            connection.Start();
            await connection.SendHelloAsync(ProtocolSerializer.Serialize(hello), cancellationToken);
            await Task.WhenAny(connection.Completion, _shutdown.Task.WaitAsync(cancellationToken));
            if (_shutdown.Task.IsCompleted)
            {
                return true;
            }

            if (connection.Completion.IsFaulted)
            {
                GuestLog.Warn($"host link lost: {connection.Completion.Exception?.GetBaseException().Message}");
            }

            return false;
        }
    }

    /// <summary>Handles one host-opened stream (public to the mux as its onIncoming callback).</summary>
    internal async Task HandleAsync(MuxStream stream)
    {
        Volatile.Write(ref _served, 1);
        GuestRequest request;
        try
        {
            request = ProtocolSerializer.ReadRequest(stream.Request);
        }
        catch (MuxProtocolException e)
        {
            await stream.SendReplyAsync(ProtocolSerializer.Serialize(GuestReply.Failure(e.Message, "EPROTO")), CancellationToken.None);
            return;
        }

        switch (request)
        {
            case ExecRequest exec:
                await _exec.HandleAsync(stream, exec, CancellationToken.None);
                return;
            case ConfigureRequest configure:
                await ReplyAsync(stream, _configure.Apply(configure));
                return;
            case WriteFileRequest write:
                await ReplyAsync(stream, await FileHandler.WriteAsync(stream, write, CancellationToken.None));
                return;
            case ReadFileRequest read:
                await ReplyAsync(stream, await FileHandler.ReadAsync(stream, read, CancellationToken.None));
                return;
            case ListFilesRequest list:
                await ReplyAsync(stream, FileHandler.List(list));
                return;
            case PortConnectRequest port:
                await ReplyAsync(stream, await PortHandler.HandleAsync(stream, port));
                return;
            case VfsMountRequest vfs:
                await _vfs.HandleAsync(stream, vfs);
                return;
            case ShutdownRequest shutdown:
                // Reply first (CONTRACTS.md): after the power-off nobody could.
                await ReplyAsync(stream, new GuestReply());
                _shutdown.TrySetResult(TimeSpan.FromMilliseconds(Math.Clamp(shutdown.GraceMs, 0, 60_000)));
                return;
            default:
                await ReplyAsync(stream, GuestReply.Failure($"unsupported request {request.GetType().Name}", "ENOSYS"));
                return;
        }
    }

    /// <summary>The hello payload: our version, the kernel, uptime and the boot's phase timings.</summary>
    internal static GuestHello BuildHello(IReadOnlyDictionary<string, long> timings)
    {
        // CLOCK_MONOTONIC counts from boot on a fresh VM: uptime, finer than /proc/uptime's 10 ms.
        static long UptimeMs(long timestamp) => (long)(timestamp * 1000.0 / Stopwatch.Frequency);
        var now = UptimeMs(Stopwatch.GetTimestamp());
        return new GuestHello
        {
            Version = GuestProcess.Version,
            KernelRelease = ReadTrimmed("/proc/sys/kernel/osrelease"),
            UptimeMs = now,
            Timings = new Dictionary<string, long>(timings, StringComparer.Ordinal)
            {
                // Where the kernel's part ends and ours begins, and where the boot ends.
                ["main_uptime"] = UptimeMs(GuestProcess.StartedAt),
                ["hello_uptime"] = now,
            },
        };
    }

    private static ValueTask ReplyAsync(MuxStream stream, GuestReply reply) =>
        stream.SendReplyAsync(ProtocolSerializer.Serialize(reply), CancellationToken.None);

    private static string? ReadTrimmed(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }
}
