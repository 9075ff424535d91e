using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>One row of <c>matchlock image ls --json</c>.</summary>
public sealed record ImageEntry(string Tag, string Id, string Digest, string Size, string Created, string Source);

/// <summary>What a store holds, to compare before and after a pull that must change nothing.</summary>
public sealed record StoreState(IReadOnlySet<string> Blobs, IReadOnlySet<string> Rootfs, IReadOnlyList<ImageEntry> Images)
{
    public override string ToString() =>
        $"blobs [{string.Join(", ", Blobs.Order(StringComparer.Ordinal))}]; rootfs [{string.Join(", ", Rootfs.Order(StringComparer.Ordinal))}]; " +
        $"images [{string.Join(", ", Images.Select(i => i.Tag + "=" + i.Id))}]";
}

/// <summary>
/// A fresh, empty MATCHLOCK_HOME for one test (no base image imported): the store starts empty, so
/// "unchanged" and "exactly these blobs" are exact. Runs the CLI through <see cref="MatchlockHome"/>
/// (same PID bookkeeping and clean-up) with a hermetic credential environment: an empty
/// DOCKER_CONFIG unless the test passes its own, and no proxy for loopback.
/// </summary>
public sealed class PullHome : IAsyncDisposable
{
    private readonly MatchlockHome _home = new();
    private readonly string _emptyDockerConfig;

    public PullHome()
    {
        Directory.CreateDirectory(Root);
        _emptyDockerConfig = Path.Combine(Root, "empty-docker-config");
        Directory.CreateDirectory(_emptyDockerConfig);
    }

    public string Root => _home.Root;

    public string ImagesDir => Path.Combine(Root, "images");

    public string BlobsDir => Path.Combine(ImagesDir, "blobs", "sha256");

    public string RootfsDir => Path.Combine(ImagesDir, "rootfs");

    /// <summary>Runs <c>matchlock ARGS</c>; <paramref name="env"/> adds to (and may override DOCKER_CONFIG of) the hermetic defaults.</summary>
    public Task<CliResult> RunAsync(IReadOnlyList<string> args, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null, Action<Process>? started = null)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["DOCKER_CONFIG"] = _emptyDockerConfig,
            ["NO_PROXY"] = "127.0.0.1,localhost",
            ["no_proxy"] = "127.0.0.1,localhost",
        };
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            environment[k] = v;
        }

        return _home.RunAsync(args, timeout: timeout ?? TimeSpan.FromMinutes(2), started: started, env: environment);
    }

    /// <summary>Writes a Docker <c>config.json</c> with credentials for <paramref name="registryHost"/>; returns its directory.</summary>
    public string WriteDockerConfig(string registryHost, RegistryCredentials credentials)
    {
        var dir = Path.Combine(Root, "docker-config-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(dir);
        var json = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["auths"] = new Dictionary<string, object> { [registryHost] = new Dictionary<string, string> { ["auth"] = credentials.BasicParameter } },
        });
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
        return dir;
    }

    /// <summary>Hex names of the files in <c>images/blobs/sha256</c>.</summary>
    public IReadOnlySet<string> Blobs() => Names(BlobsDir, "*");

    /// <summary>Root filesystem images (<c>rootfs/*.erofs</c>).</summary>
    public IReadOnlySet<string> Rootfs() => Names(RootfsDir, "*.erofs");

    /// <summary><c>images/.tmp-*</c> entries: must be none once a pull has ended.</summary>
    public IReadOnlyList<string> TempEntries() =>
        Directory.Exists(ImagesDir) ? Directory.GetFileSystemEntries(ImagesDir, ".tmp-*") : [];

    public void AssertNoTempEntries()
    {
        var temp = TempEntries();
        Assert.True(temp.Count == 0, "pull staging left behind: " + string.Join(", ", temp));
    }

    /// <summary><c>matchlock image ls --json</c>, parsed.</summary>
    public async Task<IReadOnlyList<ImageEntry>> ListAsync()
    {
        var r = await RunAsync(["image", "ls", "--json"]);
        Assert.True(r.ExitCode == 0, "image ls --json: " + r);
        using var json = JsonDocument.Parse(r.Stdout);
        return [.. json.RootElement.EnumerateArray().Select(e => new ImageEntry(
            Text(e, "tag"), Text(e, "id"), Text(e, "digest"), Text(e, "size"), Text(e, "created"), Text(e, "source")))];
    }

    public async Task<ImageEntry> SingleImageAsync(string tag)
    {
        var images = await ListAsync();
        var matches = images.Where(i => i.Tag == tag).ToList();
        Assert.True(matches.Count == 1, $"expected one image tagged {tag}; image ls --json has: {string.Join(", ", images.Select(i => i.Tag))}");
        return matches[0];
    }

    public async Task<StoreState> SnapshotAsync() => new(Blobs(), Rootfs(), await ListAsync());

    /// <summary>Same blobs, root filesystems and tags as <paramref name="before"/>, and no staging left.</summary>
    public async Task AssertUnchangedAsync(StoreState before)
    {
        AssertNoTempEntries();
        var after = await SnapshotAsync();
        Assert.True(before.Blobs.SetEquals(after.Blobs) && before.Rootfs.SetEquals(after.Rootfs) && before.Images.SequenceEqual(after.Images),
            $"the store changed:\nbefore: {before}\nafter:  {after}");
    }

    /// <summary>Exactly these blobs are stored (each content-addressed file once).</summary>
    public void AssertBlobsAre(IEnumerable<Blob> expected)
    {
        var want = expected.Select(b => b.Hex).ToHashSet(StringComparer.Ordinal);
        var have = Blobs();
        Assert.True(want.SetEquals(have),
            $"blobs differ.\nmissing: {string.Join(", ", want.Except(have))}\nunexpected: {string.Join(", ", have.Except(want))}");
    }

    /// <summary>The one root filesystem file of an image: <c>rootfs/&lt;id hex&gt;-&lt;build&gt;.erofs</c>.</summary>
    public string RootfsOf(string imageId)
    {
        var matches = Directory.Exists(RootfsDir) ? Directory.GetFiles(RootfsDir, LocalRegistry.Hex(imageId) + "-*.erofs") : [];
        Assert.True(matches.Length == 1, $"expected one root filesystem for {imageId}; have: {string.Join(", ", Rootfs())}");
        return matches[0];
    }

    /// <summary>Extracts an image's root filesystem with fsck.erofs and reads <see cref="TestImages.MarkerPath"/>, without a VM.</summary>
    public async Task<string> ReadMarkerFromRootfsAsync(string imageId)
    {
        var image = RootfsOf(imageId);
        var target = Path.Combine(Root, "extract-" + Guid.NewGuid().ToString("N")[..6]);
        var psi = new ProcessStartInfo("fsck.erofs") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("--extract=" + target);
        psi.ArgumentList.Add(image);
        using var fsck = Process.Start(psi)!;
        var stderr = fsck.StandardError.ReadToEndAsync();
        _ = fsck.StandardOutput.ReadToEndAsync();
        await fsck.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(fsck.ExitCode == 0, $"fsck.erofs --extract {image} failed: {await stderr}");
        try
        {
            return await File.ReadAllTextAsync(Path.Combine(target, TestImages.MarkerPath[1..]));
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    public ValueTask DisposeAsync() => _home.DisposeAsync();

    private static string Text(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()) : "";

    private static HashSet<string> Names(string dir, string pattern) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir, pattern).Select(f => Path.GetFileName(f)).ToHashSet(StringComparer.Ordinal) : [];
}
