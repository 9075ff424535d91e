using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Integration.Tests;

/// <summary>
/// Named volumes and <c>run --disk</c> end to end: data written in one sandbox is read in the
/// next, <c>:ro</c> refuses writes (EROFS) at the guest's mount, a host ext4 file attaches like a
/// volume and is shared read-only by two running sandboxes, a writable volume is refused to a
/// second sandbox (and to <c>volume rm</c>/<c>cp</c>) while one holds it, what a writer killed
/// mid-run had synced survives (a read-only attach is refused until a writable one has replayed
/// the journal), and a guest mount failure fails the run leaving nothing. Four VM boots in all;
/// the refusals need none (they happen before any VM starts).
/// </summary>
public sealed class VolumeTests(MatchlockHome home) : IClassFixture<MatchlockHome>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string VolumesDir => Path.Combine(home.Root, "volumes");

    private Task<CliResult> Run(params string[] args) => home.RunAsync(args, timeout: TimeSpan.FromMinutes(2));

    private static void Ok(CliResult r) => Assert.True(r.ExitCode == 0, r.ToString());

    private static void Refused(CliResult r, string expected)
    {
        Assert.True(r.ExitCode == 125, r.ToString());
        Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Volume_data_survives_sandboxes_and_a_writable_volume_has_one_user_at_a_time()
    {
        VmPrerequisites.Ensure();
        var created = await Run("volume", "create", "vol", "--size", "64");
        Ok(created);
        Assert.Equal($"Created volume vol (64 MB)\nPath: {Path.Combine(VolumesDir, "vol.ext4")}\n", created.Stdout);
        Ok(await Run("volume", "create", "other", "--size", "64"));
        Ok(await Run("volume", "create", "fresh", "--size", "16"));

        // A host ext4 image the user made with their own tools, with a file on it.
        var content = Path.Combine(home.Root, "content");
        Directory.CreateDirectory(content);
        await File.WriteAllTextAsync(Path.Combine(content, "host.txt"), "from the host image\n", Ct);
        var hostImage = Path.Combine(home.Root, "host.ext4");
        Tool("truncate", "-s", "32M", hostImage);
        Tool("mkfs.ext4", "-q", "-F", "-d", content, hostImage);

        // 1. A long-lived sandbox writes to the volume; the host image is read-only in it.
        var detached = await Run("run", "-d", "--image", "busybox", "--no-network",
            "--disk", "@vol:/mnt/vol", "--disk", $"{hostImage}:/mnt/host:ro");
        Ok(detached);
        var id = detached.Stdout.Trim();
        var stopped = false;
        try
        {
            Ok(await Run("exec", id, "--", "sh", "-c", "echo written by the first sandbox > /mnt/vol/hello"));
            var host = await Run("exec", id, "--", "cat", "/mnt/host/host.txt");
            Ok(host);
            Assert.Equal("from the host image\n", host.Stdout);
            var roWrite = await Run("exec", id, "--", "sh", "-c", "echo x > /mnt/host/new");
            Assert.NotEqual(0, roWrite.ExitCode);
            Assert.Contains("Read-only file system", roWrite.Stderr, StringComparison.Ordinal);
            var mounts = await Run("exec", id, "--", "cat", "/proc/mounts");
            Assert.Matches(@"/dev/vd\S+ /mnt/vol ext4 rw", mounts.Stdout);
            Assert.Matches(@"/dev/vd\S+ /mnt/host ext4 ro", mounts.Stdout);

            var inspect = await Run("inspect", id);
            Ok(inspect);
            Assert.Contains(Path.Combine(VolumesDir, "vol.ext4"), inspect.Stdout, StringComparison.Ordinal);

            // While it runs, nobody else gets the volume: no second writer or reader, no rm, no cp.
            Refused(await Run("run", "--image", "busybox", "--no-network", "--disk", "@vol:/data", "--", "true"), "volume \"vol\" is in use by another sandbox");
            Refused(await Run("run", "--image", "busybox", "--no-network", "--disk", "@vol:/data:ro", "--", "true"), "volume \"vol\" is in use by another sandbox");
            Refused(await Run("volume", "rm", "vol"), "volume \"vol\" is in use by another sandbox");
            Refused(await Run("volume", "cp", "vol", "copy"), "volume \"vol\" is in use by another sandbox");
            Assert.Single(Directory.GetDirectories(home.VmsDir)); // the refused runs made no VM

            // 2. Meanwhile a second sandbox shares the host image read-only, writes another
            //    volume, and is SIGKILLed mid-run (its owner dies; QEMU with it).
            var started = new TaskCompletionSource();
            var output = new SignalingStream("started", started);
            Process? cli = null;
            var killedRun = home.RunAsync(
                ["run", "--image", "busybox", "--no-network", "--disk", "@other:/o", "--disk", $"{hostImage}:/h:ro", "--",
                    "sh", "-c", "cat /h/host.txt; echo written before the crash > /o/crash; sync; echo started; sleep 300"],
                started: p => cli = p, stdoutSink: output, timeout: TimeSpan.FromMinutes(2));
            await started.Task.WaitAsync(TimeSpan.FromSeconds(90), Ct);
            Assert.StartsWith("from the host image\n", output.Text, StringComparison.Ordinal);
            Assert.Equal(0, Interop.Kill(cli!.Id, 9));
            await killedRun;

            Ok(await Run("kill", id));
            stopped = true;
        }
        finally
        {
            if (!stopped)
            {
                await Run("kill", id);
            }
        }

        // 3. Copy the volume, now that nobody writes it.
        var copy = await Run("volume", "cp", "vol", "copy");
        Ok(copy);
        Assert.StartsWith("Copied volume vol to copy\nPath: ", copy.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("/copy.ext4 (64 MB)\n", copy.Stdout, StringComparison.Ordinal);

        // 4. The killed writer left its journal to replay: not possible on a read-only device, and
        //    never done on the host (the image is the guest's, untrusted): refused with the remedy.
        Refused(await Run("run", "--image", "busybox", "--no-network", "--disk", "@other:/o:ro", "--", "true"), "was not unmounted cleanly");

        // 5. A new sandbox reads: the data survived its sandbox, the copy has it, what the killed
        //    writer synced is there (its journal replayed by this writable mount), the read-only
        //    ones refuse writes, and a fresh volume on /tmp took the image's 1777 (as in Docker).
        var read = await Run("run", "--image", "busybox", "--no-network",
            "--disk", "@vol:/v:ro", "--disk", "@copy:/c:ro", "--disk", "@other:/o", "--disk", $"{hostImage}:/h:ro", "--disk", "@fresh:/tmp",
            "--", "sh", "-c", "cat /v/hello /c/hello /o/crash /h/host.txt; touch /c/x 2>&1; echo exit=$?; stat -c %a /tmp; ls /tmp");
        Ok(read);
        Assert.Equal(
            "written by the first sandbox\nwritten by the first sandbox\nwritten before the crash\nfrom the host image\n"
            + "touch: /c/x: Read-only file system\nexit=1\n1777\nlost+found\n",
            read.Stdout);

        var ls = await Run("volume", "ls");
        Ok(ls);
        Assert.Matches(@"^NAME\s+SIZE\ncopy\s+64\.0 MB\nfresh\s+16\.0 MB\nother\s+64\.0 MB\nvol\s+64\.0 MB\n$", ls.Stdout); // no PATH, as the original
        var wide = await Run("volume", "ls", "-o", "wide");
        Ok(wide);
        Assert.Matches(@"NAME\s+SIZE\s+PATH\ncopy\s+64\.0 MB\s+\S+/copy\.ext4\nfresh\s+16\.0 MB\s+\S+/fresh\.ext4\nother\s+64\.0 MB\s+\S+/other\.ext4\nvol\s+64\.0 MB\s+\S+/vol\.ext4\n", wide.Stdout);
        var json = await Run("volume", "ls", "--json");
        Ok(json);
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            Assert.Equal(["copy", "fresh", "other", "vol"], doc.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()));
            Assert.All(doc.RootElement.EnumerateArray(), e => Assert.True(e.GetProperty("used").GetInt64() < e.GetProperty("size_bytes").GetInt64()));
            Assert.Equal(64L * 1024 * 1024, doc.RootElement[0].GetProperty("size_bytes").GetInt64());
            Assert.Equal("64.0 MB", doc.RootElement[0].GetProperty("size").GetString()); // a string, as the original's SDKs read it
            Assert.EndsWith("/copy.ext4", doc.RootElement[0].GetProperty("path").GetString(), StringComparison.Ordinal);
        }

        var createdJson = await Run("volume", "create", "made-by-sdk", "--size", "32", "--json");
        Ok(createdJson);
        using (var doc = JsonDocument.Parse(createdJson.Stdout))
        {
            Assert.Equal("made-by-sdk", doc.RootElement.GetProperty("name").GetString());
            Assert.Equal("32.0 MB", doc.RootElement.GetProperty("size").GetString());
            Assert.EndsWith("/made-by-sdk.ext4", doc.RootElement.GetProperty("path").GetString(), StringComparison.Ordinal);
        }

        var rm = await Run("volume", "rm", "copy", "fresh", "made-by-sdk", "other", "vol");
        Ok(rm);
        Assert.Equal("Removed volume copy\nRemoved volume fresh\nRemoved volume made-by-sdk\nRemoved volume other\nRemoved volume vol\n", rm.Stdout);
        Assert.Empty(Directory.GetFileSystemEntries(VolumesDir));
        Ok(await Run("prune")); // the killed run's record
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_guest_mount_failure_fails_the_run_naming_the_disk_and_leaves_the_volume_free()
    {
        VmPrerequisites.Ensure();
        Ok(await Run("volume", "create", "fine", "--size", "16"));
        Ok(await Run("volume", "create", "onfile", "--size", "16"));

        // /bin/busybox is a file in the image: the second mount fails (ENOTDIR) after the first
        // succeeded, which the guest must undo.
        var r = await Run("run", "--image", "busybox", "--no-network", "--disk", "@fine:/mnt/fine", "--disk", "@onfile:/bin/busybox", "--", "echo", "never");
        Refused(r, "--disk @onfile:/bin/busybox: mount ext4");
        Assert.Contains("Not a directory", r.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("never", r.Stdout, StringComparison.Ordinal);
        home.AssertNothingLeft();

        // Nothing holds them any more, and the one mounted first was unmounted cleanly.
        Assert.DoesNotContain("needs_recovery", Tool("dumpe2fs", "-h", Path.Combine(VolumesDir, "fine.ext4")), StringComparison.Ordinal);
        Ok(await Run("volume", "rm", "fine", "onfile"));
    }

    [Fact]
    public async Task Bad_names_paths_and_sources_are_refused_before_anything_is_created()
    {
        VmPrerequisites.Ensure();
        Refused(await Run("volume", "create", "-bad"), "unknown flag: -bad"); // as the original: a flag, not a name
        Refused(await Run("volume", "create", "a/b"), "invalid volume name \"a/b\"");
        Refused(await Run("volume", "create", "tiny", "--size", "1"), "--size must be between 16");
        Ok(await Run("volume", "create", "v", "--size", "16"));
        Refused(await Run("volume", "create", "v", "--size", "16"), "named volume already exists: \"v\"");
        Refused(await Run("volume", "rm", "nope"), "named volume not found: \"nope\"");
        Refused(await Run("volume", "cp", "nope", "x"), "matchlock volume create nope");
        Refused(await Run("volume", "cp", "v", "v"), "named volume already exists: \"v\"");

        string[] run = ["run", "--image", "busybox", "--no-network"];
        Refused(await Run([.. run, "--disk", "@missing:/data", "--", "true"]), "create it with `matchlock volume create missing`");
        Refused(await Run([.. run, "--disk", "/nonexistent/disk.ext4:/data", "--", "true"]), "/nonexistent/disk.ext4 does not exist");
        Refused(await Run([.. run, "--disk", "@v:data", "--", "true"]), "must be absolute");
        Refused(await Run([.. run, "--disk", "@v:/", "--", "true"]), "cannot be mounted at /");
        Refused(await Run([.. run, "--disk", "@v:/a/../etc", "--", "true"]), "must not contain '..'");
        Refused(await Run([.. run, "--disk", "@v:/a", "--disk", "@v:/b", "--", "true"]), "@v is attached twice");
        Refused(await Run([.. run, "--disk", "@v:/a", "--disk", "@w:/a", "--", "true"]), "two disks are mounted at /a");
        Refused(await Run([.. run, "--disk", "@v:/a:rw:ro", "--", "true"]), "--disk");

        var ls = await Run("volume", "ls");
        Ok(ls);
        Assert.Matches(@"\nv\s+16\.0 MB\s", ls.Stdout);
        var files = Directory.GetFileSystemEntries(VolumesDir).Select(Path.GetFileName).ToList();
        Assert.Contains("v.ext4", files);
        Assert.DoesNotContain(files, f => f!.StartsWith("tiny", StringComparison.Ordinal) || f.StartsWith('.') || f.StartsWith("-bad", StringComparison.Ordinal));
        Assert.False(Directory.Exists(home.VmsDir) && Directory.GetFileSystemEntries(home.VmsDir).Length > 0, "a refused run created a VM directory");
        Ok(await Run("volume", "rm", "v"));
    }

    private static string Tool(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)}: exit {process.ExitCode}: {stderr}");
        return stdout.Result;
    }
}
