using System.Text;
using Matchlock.Core.Kernel;
using Matchlock.Core.Tests.Kernel;

namespace Matchlock.Integration.Tests.Kernel;

/// <summary>
/// Proves our newc writer produces archives GNU cpio reads back exactly. Needs root: the archive
/// holds a character device (dev/console) that cpio must mknod on extraction.
/// </summary>
public sealed class CpioWriterRoundTripTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("ml-cpio-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Round_trip_through_gnu_cpio_keeps_names_modes_sizes_and_contents()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.Cpio);
        var ct = TestContext.Current.CancellationToken;
        var archive = Path.Combine(_dir.FullName, "a.cpio");
        var files = new Dictionary<string, byte[]>
        {
            // Sizes 0..5 and names of several lengths exercise every padding case.
            ["init"] = Encoding.ASCII.GetBytes("#!/bin/sh\necho hi\n"),
            ["e"] = [],
            ["a/b"] = [1],
            ["a/bc"] = [1, 2],
            ["a/d/c/d.ko"] = [1, 2, 3],
            ["lib/modules/6.1.0-56-cloud-amd64/kernel/x.ko"] = [1, 2, 3, 4],
            ["etc/matchlock/modules"] = Encoding.ASCII.GetBytes("/lib/x.ko\n"),
            ["five"] = [5, 4, 3, 2, 1],
        };
        await using (var w = new CpioWriter(File.Create(archive)))
        {
            await w.AddDirectoryAsync("/tmp", 0x3FF, ct);
            foreach (var (name, bytes) in files)
            {
                await w.AddFileAsync(name, bytes, name == "init" ? 0x1ED : 0x1A4, ct);
            }

            await w.AddSymlinkAsync("bin/sh", "busybox", ct);
            await w.AddCharDeviceAsync("dev/console", 0x180, 5, 1, ct);
            await w.FinishAsync(ct);
        }

        Assert.Equal(0, new FileInfo(archive).Length % 4);

        var listing = (await HostTools.RunAsync("cpio", "-itv --quiet", archive, null, ct))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            // mode links owner group size|"maj, min" month day year name [-> target]
            .ToDictionary(f => f.Contains("->") ? f[^3] : f[^1], f => f);
        Assert.Equal("-rwxr-xr-x", listing["init"][0]);
        Assert.Equal("-rw-r--r--", listing["five"][0]);
        Assert.Equal("5", listing["five"][4]);
        Assert.Equal("0", listing["e"][4]);
        Assert.Equal("drwxrwxrwt", listing["tmp"][0]); // 01777, sticky
        Assert.Equal("drwxr-xr-x", listing["a/d/c"][0]); // parent added automatically
        Assert.Equal("lrwxrwxrwx", listing["bin/sh"][0]);
        Assert.Equal(["crw-------", "1", "root", "root", "5,", "1"], listing["dev/console"][..6]);
        Assert.Equal("root", listing["init"][2]);

        var outDir = Directory.CreateDirectory(Path.Combine(_dir.FullName, "x")).FullName;
        await HostTools.RunAsync("cpio", "-idm --quiet --no-absolute-filenames", archive, outDir, ct);
        foreach (var (name, bytes) in files)
        {
            Assert.Equal(bytes, await File.ReadAllBytesAsync(Path.Combine(outDir, name), ct));
        }

        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
            | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(Path.Combine(outDir, "init")));
        Assert.Equal("busybox", new FileInfo(Path.Combine(outDir, "bin/sh")).LinkTarget);
    }
}
