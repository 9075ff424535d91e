using System.Diagnostics;
using System.Formats.Tar;

namespace Matchlock.Integration.Tests;

/// <summary>
/// Faults a user can cause or meet: a guest that never becomes ready, Ctrl-C during boot, KVM
/// asked for where it cannot work, a corrupt image tarball, and a real terminal for `-it`.
/// Each must give a clear message and a non-zero status and leave nothing behind.
/// </summary>
public sealed class FaultTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_guest_that_never_becomes_ready_times_out_with_the_console_tail()
    {
        VmPrerequisites.Ensure();

        // Static busybox as /init boots fine but never speaks our protocol.
        var r = await home.RunAsync(
            ["run", "--image", "busybox", "--", "true"],
            env: new Dictionary<string, string> { ["MATCHLOCK_GUEST_BIN"] = "/bin/busybox", ["MATCHLOCK_BOOT_TIMEOUT"] = "10" },
            timeout: TimeSpan.FromMinutes(2));
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains("did not become ready within 10 s", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("last lines of the guest console", r.Stderr, StringComparison.Ordinal);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Ctrl_c_during_boot_stops_cleanly()
    {
        VmPrerequisites.Ensure();
        Process? cli = null;
        var run = home.RunAsync(["run", "--image", "busybox", "--", "sleep", "100"], started: p => cli = p);

        // Wait until QEMU is up, so the interrupt lands mid-boot rather than before it.
        var clock = Stopwatch.StartNew();
        while (home.QemuProcesses().Count == 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(20, Ct);
        }

        Assert.Equal(0, Interop.Kill(-cli!.Id, 2)); // the whole group, as a terminal does
        var r = await run;
        Assert.True(r.ExitCode is 130, r.ToString());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Asking_for_kvm_where_it_cannot_work_is_a_clear_error()
    {
        VmPrerequisites.Ensure();
        if (!Directory.Exists("/sys/module/kvm_pvm") && File.Exists("/dev/kvm"))
        {
            Assert.Skip("this host has working KVM; the failure path needs a host without it");
        }

        var r = await home.RunAsync(["run", "--accel", "kvm", "--image", "busybox", "--", "true"]);
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains("KVM", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("tcg", r.Stderr, StringComparison.OrdinalIgnoreCase);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_corrupt_or_escaping_tarball_is_refused_and_the_store_is_unchanged()
    {
        VmPrerequisites.Ensure();
        var before = await home.RunAsync(["image", "ls"]);

        var truncated = (await File.ReadAllBytesAsync(VmPrerequisites.BaseImageTar, Ct))[..300_000];
        var r1 = await home.RunAsync(["image", "import", "broken:1"], new MemoryStream(truncated));
        Assert.True(r1.ExitCode == 125, r1.ToString());

        // A layer whose entry climbs out of the root.
        using var evil = new MemoryStream();
        await WriteEvilArchiveAsync(evil);
        evil.Position = 0;
        var r2 = await home.RunAsync(["image", "import", "evil:1"], evil);
        Assert.True(r2.ExitCode == 125, r2.ToString());
        Assert.Contains("..", r2.Stderr, StringComparison.Ordinal);

        var after = await home.RunAsync(["image", "ls"]);
        Assert.Equal(before.Stdout, after.Stdout);
        Assert.Empty(Directory.GetDirectories(Path.Combine(home.Root, "images"), ".tmp*"));
    }

    [Fact]
    public async Task Dash_it_gives_the_command_a_terminal_when_run_from_one()
    {
        VmPrerequisites.Ensure();

        // script(1) runs matchlock on a pseudo-terminal, as a user's shell would.
        var psi = new ProcessStartInfo("script", ["-qec", $"{VmPrerequisites.MatchlockBin} run -it --image busybox -- sh -c 'tty; stty size'", "/dev/null"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.Environment["MATCHLOCK_HOME"] = home.Root;
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromMinutes(2), Ct);
        var text = await output;
        Assert.True(process.ExitCode == 0, text + await process.StandardError.ReadToEndAsync(Ct));
        Assert.Matches("/dev/pts/[0-9]+", text);
        Assert.Matches("[0-9]+ [0-9]+", text);
        home.AssertNothingLeft();
    }

    private static async Task WriteEvilArchiveAsync(Stream destination)
    {
        // A legacy `docker save` archive: manifest.json, a config, and one layer tar.
        using var layer = new MemoryStream();
        await using (var writer = new TarWriter(layer, leaveOpen: true))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, "../../escaped.txt") { DataStream = new MemoryStream("gotcha"u8.ToArray()) };
            await writer.WriteEntryAsync(entry);
        }

        var layerBytes = layer.ToArray();
        var diffId = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(layerBytes));
        var config = System.Text.Encoding.UTF8.GetBytes($$$"""{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["{{{diffId}}}"]}}""");
        var configName = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(config)) + ".json";
        var manifest = System.Text.Encoding.UTF8.GetBytes($$"""[{"Config":"{{configName}}","RepoTags":["evil:1"],"Layers":["layer/layer.tar"]}]""");

        await using var archive = new TarWriter(destination, leaveOpen: true);
        foreach (var (name, bytes) in new[] { ("manifest.json", manifest), (configName, config), ("layer/layer.tar", layerBytes) })
        {
            await archive.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(bytes) });
        }
    }
}
