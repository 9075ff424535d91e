using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Interop;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using static Matchlock.Guest.Interop.LibcConstants;

namespace Matchlock.Guest.Agent;

/// <summary>
/// vfs_mount (docs/VFS.md, CONTRACTS.md "VFS mounts"): loads fuse if needed, mounts a FUSE
/// filesystem at the requested path with <c>/dev/fuse</c> as its connection, says <c>ok</c> on
/// stderr, and relays the connection over the stream (<see cref="FuseRelay"/>) until the host
/// closes it or the filesystem is unmounted; then unmounts, closes the device and replies.
/// </summary>
internal sealed class VfsMountHandler
{
    /// <summary>
    /// What the kernel gets: our fd; a directory root (the host's root node is a directory);
    /// root as the mounting user, <c>allow_other</c> so every guest user may enter, and
    /// <c>default_permissions</c> so the guest's kernel checks modes (the host's providers check
    /// only what keeps the host safe, docs/VFS.md); <c>max_read</c> as the host's <c>max_write</c>.
    /// </summary>
    internal const string OptionsFormat = "fd={0},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,max_read=1048576";

    private static readonly byte[] Ready = "ok\n"u8.ToArray();
    private static readonly byte[] OutputChannels = [StreamChannel.Stdout, StreamChannel.Stderr];

    private readonly string _root;
    private readonly FuseModule _module;

    /// <param name="root">Where the guest's filesystem is (/ in the guest, a temporary directory in tests).</param>
    internal VfsMountHandler(string root, FuseModule module)
    {
        _root = root;
        _module = module;
    }

    internal async Task HandleAsync(MuxStream stream, VfsMountRequest request)
    {
        if (request.Path is not { } path || !IsNormalAbsolute(path))
        {
            await FailAsync(stream, $"vfs_mount {request.MountId}: mount path \"{request.Path}\" must be absolute, normalised and not /", "EINVAL");
            return;
        }

        if (request.BindFile is { } file && (file.Length == 0 || file.Contains('/', StringComparison.Ordinal) || file is "." or ".." || !IsNormalAbsolute(request.BindTarget)))
        {
            await FailAsync(stream, $"vfs_mount {request.MountId}: bind_file \"{file}\" must be one name and bind_target an absolute, normalised path", "EINVAL");
            return;
        }

        if (_module.EnsureAvailable(request.VirtiofsTag is null ? "fuse" : "virtiofs") is { } missing)
        {
            await FailAsync(stream, $"vfs_mount {request.MountId}: {missing}", "ENODEV");
            return;
        }

        var target = Path.Join(_root.TrimEnd('/'), path);
        if (request.VirtiofsTag is { } tag)
        {
            await MountVirtiofsAsync(stream, request, path, target, tag, BindTargetOf(request));
            return;
        }
        FuseDevice device;
        try
        {
            Mounter.EnsureDirectory(target);
            device = FuseDevice.Open();
        }
        catch (IOException e)
        {
            await FailAsync(stream, $"vfs_mount {request.MountId} at {path}: {ErrorCodes.Describe(e)}", ErrorCodes.FromException(e));
            return;
        }

        using (device)
        {
            var relay = new FuseRelay(device, stream);
            var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!VfsMounts.TryAdd(target, relay, ended.Task))
            {
                await FailAsync(stream, $"vfs_mount {request.MountId}: {path} is already a VFS mount", "EBUSY");
                return;
            }

            try
            {
                var flags = MS_NOSUID | MS_NODEV | (request.ReadOnly ? MS_RDONLY : 0);
                var options = string.Format(CultureInfo.InvariantCulture, OptionsFormat, device.Fd);
                if (Libc.mount("matchlock", target, "fuse", flags, options) != 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    await FailAsync(stream, $"vfs_mount {request.MountId}: mount fuse on {path}: {NativeCallException.Describe(errno)}", ErrorCodes.FromErrno(errno));
                    return;
                }

                GuestLog.Info($"vfs {request.MountId} mounted at {path}{(request.ReadOnly ? " (ro)" : "")}");
                var bound = BindTargetOf(request);
                var outcome = await RelayAsync(stream, relay, bound is null ? null : () => FileBind.Bind(Path.Join(target, request.BindFile), bound, request.ReadOnly));
                if (bound is not null)
                {
                    Unmount(bound); // before the tree it binds from (a no-op when the bind failed)
                }

                Unmount(target);
                GuestLog.Info($"vfs {request.MountId} at {path} ended: {outcome.End}{(outcome.Detail is null ? "" : $" ({outcome.Detail})")}");
                await TryReplyAsync(stream, outcome switch
                {
                    { End: FuseRelayEnd.HostClosed or FuseRelayEnd.Unmounted } => new GuestReply(),
                    { End: FuseRelayEnd.ProtocolError } => GuestReply.Failure($"vfs {request.MountId}: {outcome.Detail}", "EPROTO"),
                    { End: FuseRelayEnd.Stopped } => GuestReply.Failure($"vfs {request.MountId}: the guest is powering off", "ESHUTDOWN"),
                    _ => GuestReply.Failure($"vfs {request.MountId}: {outcome.Detail ?? outcome.End.ToString()}", "EIO"),
                });
            }
            finally
            {
                VfsMounts.Remove(target);
                // The device closes (leaving this block) after the unmount: a close while still
                // mounted would leave a dead mount that answers ENOTCONN.
                ended.TrySetResult();
            }
        }
    }

    /// <summary>
    /// The vhost-user transport (docs/VFS.md): the kernel's virtiofs driver talks to the host's
    /// back-end over the device with tag <paramref name="tag"/>; this stream only says when to
    /// unmount. virtiofs mounts with <c>default_permissions</c> and <c>allow_other</c> itself.
    /// </summary>
    private static async Task MountVirtiofsAsync(MuxStream stream, VfsMountRequest request, string path, string target, string tag, string? bound)
    {
        if (tag.Length is 0 or > 36 || !tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            await FailAsync(stream, $"vfs_mount {request.MountId}: virtiofs tag \"{tag}\" is not a tag we give", "EINVAL");
            return;
        }

        try
        {
            Mounter.EnsureDirectory(target);
        }
        catch (IOException e)
        {
            await FailAsync(stream, $"vfs_mount {request.MountId} at {path}: {ErrorCodes.Describe(e)}", ErrorCodes.FromException(e));
            return;
        }

        var session = new VirtiofsSession(stream);
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!VfsMounts.TryAdd(target, session, ended.Task))
        {
            await FailAsync(stream, $"vfs_mount {request.MountId}: {path} is already a VFS mount", "EBUSY");
            return;
        }

        try
        {
            var flags = MS_NOSUID | MS_NODEV | (request.ReadOnly ? MS_RDONLY : 0);
            if (Libc.mount(tag, target, "virtiofs", flags, null) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                await FailAsync(stream, $"vfs_mount {request.MountId}: mount virtiofs {tag} on {path}: {NativeCallException.Describe(errno)}", ErrorCodes.FromErrno(errno));
                return;
            }

            GuestLog.Info($"vfs {request.MountId} mounted at {path} (virtiofs {tag}){(request.ReadOnly ? " (ro)" : "")}");
            if (bound is not null && FileBind.Bind(Path.Join(target, request.BindFile), bound, request.ReadOnly) is { } failed)
            {
                Unmount(target);
                await FailAsync(stream, $"vfs_mount {request.MountId}: {failed.Reason}", failed.Code);
                return;
            }

            FuseRelayOutcome outcome;
            try
            {
                await stream.WriteAsync(StreamChannel.Stderr, Ready, CancellationToken.None);
                outcome = await session.RunAsync();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                outcome = new FuseRelayOutcome(FuseRelayEnd.LinkLost, e.Message);
            }

            if (bound is not null)
            {
                Unmount(bound); // before the tree it binds from
            }

            Unmount(target);
            GuestLog.Info($"vfs {request.MountId} at {path} ended: {outcome.End}{(outcome.Detail is null ? "" : $" ({outcome.Detail})")}");
            await TryReplyAsync(stream, outcome.End switch
            {
                FuseRelayEnd.HostClosed => new GuestReply(),
                FuseRelayEnd.Stopped => GuestReply.Failure($"vfs {request.MountId}: the guest is powering off", "ESHUTDOWN"),
                _ => GuestReply.Failure($"vfs {request.MountId}: {outcome.Detail ?? outcome.End.ToString()}", "EIO"),
            });
        }
        finally
        {
            VfsMounts.Remove(target);
            ended.TrySetResult();
        }
    }

    /// <summary>An absolute path other than /, without ., .. or empty segments.</summary>
    private static bool IsNormalAbsolute(string? path) =>
        path is { Length: > 1 } && path.StartsWith('/') && !path.Split('/').Any(s => s is "." or "..")
        && !path.Contains("//", StringComparison.Ordinal) && !path.EndsWith('/');

    /// <summary>Where a single-file mount's file is bound in this guest's tree; null for a folder mount.</summary>
    private string? BindTargetOf(VfsMountRequest request) =>
        request.BindFile is null ? null : Path.Join(_root.TrimEnd('/'), request.BindTarget);

    /// <summary>
    /// Relays, and signals ready once the mount is usable: at once for a folder; for a single file
    /// after <paramref name="bind"/> (which needs the relay running: binding looks the file up
    /// through the mount). A failed bind is reported on stderr and ends the relay; a failed ready
    /// write means the host is gone, and the relay then ends at once.
    /// </summary>
    private static async Task<FuseRelayOutcome> RelayAsync(MuxStream stream, FuseRelay relay, Func<(string Reason, string Code)?>? bind)
    {
        var running = relay.RunAsync();
        try
        {
            if (bind is not null && await Task.Run(bind) is { } failed)
            {
                GuestLog.Warn(failed.Reason);
                await stream.WriteAsync(StreamChannel.Stderr, Encoding.UTF8.GetBytes($"error: {failed.Reason}\n"), CancellationToken.None);
                relay.Stop();
                await running;
                return new FuseRelayOutcome(FuseRelayEnd.ProtocolError, failed.Reason);
            }

            await stream.WriteAsync(StreamChannel.Stderr, Ready, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            relay.Stop();
            await running;
            return new FuseRelayOutcome(FuseRelayEnd.LinkLost, e.Message);
        }

        return await running;
    }

    /// <summary>
    /// Lazily (a VFS tree, or a single file's bind before its tree): a process may still hold a
    /// file or its cwd there; the connection's abort (the device's close) then fails its accesses.
    /// </summary>
    internal static void Unmount(string target)
    {
        if (Libc.umount2(target, MNT_DETACH) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINVAL) // EINVAL: not a mount point any more (unmounted in the guest)
            {
                GuestLog.Warn($"umount {target}: {NativeCallException.Describe(errno)}");
            }
        }
    }

    private static async Task FailAsync(MuxStream stream, string reason, string code)
    {
        GuestLog.Warn(reason);
        try
        {
            await stream.WriteAsync(StreamChannel.Stderr, Encoding.UTF8.GetBytes($"error: {reason}\n"), CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            return; // the host is gone
        }

        await TryReplyAsync(stream, GuestReply.Failure(reason, code));
    }

    private static async Task TryReplyAsync(MuxStream stream, GuestReply reply)
    {
        try
        {
            await stream.SendReplyAsync(ProtocolSerializer.Serialize(reply), OutputChannels, CancellationToken.None);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // Reset or link gone: nobody is waiting for the reply.
        }
    }
}
