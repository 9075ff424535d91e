using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Matchlock.Guest.Processes;
using Matchlock.Guest.Users;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests;

/// <summary>
/// The published guest binary as PID 1 in a real QEMU microvm (TCG), driven over the
/// virtio-serial channel exactly as the host will: hello, configure, exec (pipes, PTY, another
/// user), files, shutdown. Opt-in (MATCHLOCK_GUEST_VM_TEST=1) because it boots a VM (~10-20 s
/// under TCG) and needs qemu-system-x86, the cloud kernel, erofs-utils and busybox-static.
/// QEMU is started through our own Spawner (System.Diagnostics.Process would fight our reaper).
/// </summary>
public sealed class VmAgentTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Guest_boots_serves_the_protocol_and_powers_off()
    {
        if (Environment.GetEnvironmentVariable("MATCHLOCK_GUEST_VM_TEST") != "1")
        {
            Assert.Skip("set MATCHLOCK_GUEST_VM_TEST=1 to boot a VM (needs qemu-system-x86, linux-image-cloud-amd64, erofs-utils, busybox-static)");
        }

        var guest = ProcessTestSupport.HelperPath ?? throw new InvalidOperationException("publish the guest first: dotnet publish src/Matchlock.Guest -c Release -o artifacts/guest");
        var work = Directory.CreateTempSubdirectory("matchlock-vm-test-").FullName;
        var spawner = ProcessTestSupport.NewSpawner();
        var script = Path.Combine(AppContext.BaseDirectory, "scripts/boot-smoke.sh");
        using (var prepare = spawner.Spawn(Spec("/bin/bash", ["bash", script, "--prepare-only", guest, work])))
        {
            var (status, _, stderr) = await ProcessTestSupport.RunToEndAsync(prepare);
            Assert.True(status.ExitCode == 0, $"preparing the VM failed: {stderr}");
        }

        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(work, "chan.sock")));
        listener.Listen(1);

        using var qemu = spawner.Spawn(Spec("/usr/bin/qemu-system-x86_64", QemuArguments(work)));
        var qemuOutput = ProcessTestSupport.RunToEndAsync(qemu);
        try
        {
            using var socket = await listener.AcceptAsync(Token).AsTask().WaitAsync(TimeSpan.FromSeconds(30), Token);
            await using var connection = new MuxConnection(new NetworkStream(socket, ownsSocket: false), isHost: true);
            connection.Start();
            var hello = ProtocolSerializer.ReadHello(await connection.WaitForHelloAsync(Token).WaitAsync(TimeSpan.FromSeconds(90), Token));
            Assert.Equal(ProtocolInfo.Version, hello.ProtocolVersion);
            Assert.Contains("modules", hello.Timings.Keys);

            var configured = await RequestAsync(connection, new ConfigureRequest
            {
                Hostname = "vmtest",
                UnixTimeMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                Hosts = [new HostEntry("db", "10.9.8.7")],
                DnsServers = ["10.0.2.3"],
                CpuMax = "50000 100000",
            });
            Assert.True(configured.Ok, configured.Error);

            var system = await ExecAsync(connection, new ExecRequest
            {
                Argv = ["sh", "-c", "hostname; cat /etc/resolv.conf; grep db /etc/hosts; cat /sys/fs/cgroup/sandbox/cpu.max; cat /proc/self/cgroup; cat /sys/class/net/lo/operstate; date +%Y"],
            });
            Assert.Equal(
                $"vmtest\nnameserver 10.0.2.3\n10.9.8.7\tdb\n50000 100000\n0::/sandbox\nunknown\n{DateTime.UtcNow.Year}\n",
                system.Stdout);

            var user = await ExecAsync(connection, new ExecRequest { Argv = ["id"], User = "nobody" });
            Assert.Equal("uid=65534(nobody) gid=65534(nogroup) groups=100(users)\n", user.Stdout);

            var tty = await ExecAsync(connection, new ExecRequest { Argv = ["sh", "-c", "tty; stty size; echo $TERM"], Tty = true, Rows = 30, Cols = 90 });
            Assert.Equal("/dev/pts/0\r\n30 90\r\nxterm\r\n", tty.Stdout);

            var missing = await ExecAsync(connection, new ExecRequest { Argv = ["nope"] });
            Assert.Equal((127, "exec: nope: not found\n"), (missing.Reply.ExitCode, missing.Stderr));

            var write = await connection.OpenAsync(ProtocolSerializer.Serialize(new WriteFileRequest { Path = "/work/dir/hello.txt" }), Token);
            await write.WriteAsync(StreamChannel.Stdin, "hello from the host\n"u8.ToArray(), Token);
            await write.WriteEofAsync(StreamChannel.Stdin, Token);
            Assert.True(ProtocolSerializer.ReadReply(await write.Reply).Ok);
            var read = await ExecAsync(connection, new ExecRequest { Argv = ["cat", "/work/dir/hello.txt"], WorkingDir = "/work" });
            Assert.Equal("hello from the host\n", read.Stdout);

            var shutdown = await RequestAsync(connection, new ShutdownRequest { GraceMs = 1000 });
            Assert.True(shutdown.Ok);
            var exited = await qemu.Exited.WaitAsync(TimeSpan.FromSeconds(60), Token);
            Assert.Equal(0, exited.ExitCode);
            var log = await File.ReadAllTextAsync(Path.Combine(work, "vm.log"), Token);
            Assert.Contains("matchlock-guest: powering off", log, StringComparison.Ordinal);
            Assert.DoesNotContain("Kernel panic", log, StringComparison.Ordinal);
            Directory.Delete(work, recursive: true);
        }
        finally
        {
            qemu.Signal(9);
            _ = await qemuOutput.WaitAsync(TimeSpan.FromSeconds(30), Token);
        }
    }

    private static SpawnSpec Spec(string path, IReadOnlyList<string> argv) =>
        new(path, argv, ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"], "/", ExecUser.Root);

    private static string[] QemuArguments(string work)
    {
        var kernelVersion = Directory.GetDirectories("/usr/lib/modules").Select(Path.GetFileName).Where(v => v!.EndsWith("cloud-amd64", StringComparison.Ordinal)).Order().Last()!;
        var mhz = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("cpu MHz", StringComparison.Ordinal)).Split(':')[1].Trim();
        var khz = (long)(double.Parse(mhz, CultureInfo.InvariantCulture) * 1000);
        return
        [
            "qemu-system-x86_64", "-M", "microvm,pit=on,pic=off,rtc=off", "-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "2",
            "-nodefaults", "-no-user-config", "-nographic", "-monitor", "none", "-no-reboot",
            "-kernel", $"/boot/vmlinuz-{kernelVersion}", "-initrd", Path.Combine(work, "initramfs.cpio"),
            "-append", $"console=ttyS0 quiet tsc_early_khz={khz} panic=-1 matchlock.channel=matchlock",
            "-serial", $"file:{Path.Combine(work, "vm.log")}",
            "-drive", $"id=root,file={Path.Combine(work, "image.erofs")},format=raw,if=none,readonly=on", "-device", "virtio-blk-device,drive=root,serial=mlroot",
            "-drive", $"id=upper,file={Path.Combine(work, "upper.ext4")},format=raw,if=none", "-device", "virtio-blk-device,drive=upper,serial=mlupper",
            "-device", "virtio-serial-device",
            "-chardev", $"socket,id=chan,path={Path.Combine(work, "chan.sock")},server=off",
            "-device", "virtserialport,chardev=chan,name=matchlock",
        ];
    }

    private static async Task<GuestReply> RequestAsync(MuxConnection connection, GuestRequest request)
    {
        var stream = await connection.OpenAsync(ProtocolSerializer.Serialize(request), Token);
        return ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(TimeSpan.FromSeconds(60), Token));
    }

    private static async Task<(GuestReply Reply, string Stdout, string Stderr)> ExecAsync(MuxConnection connection, ExecRequest request)
    {
        var stream = await connection.OpenAsync(ProtocolSerializer.Serialize(request), Token);
        var stdout = AgentHarness.ReadChannelAsync(stream, StreamChannel.Stdout);
        var stderr = AgentHarness.ReadChannelAsync(stream, StreamChannel.Stderr);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(TimeSpan.FromSeconds(60), Token));
        return (reply, await stdout, await stderr);
    }
}
