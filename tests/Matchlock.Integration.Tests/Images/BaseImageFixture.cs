using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Matchlock.Core;
using Matchlock.Core.Images;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Integration.Tests.Images;

/// <summary>
/// Runs scripts/make-base-image.sh once and derives the other archive layouts from its output:
/// legacy (skopeo docker-archive), Docker ≥ 25 (OCI layout + manifest.json), pure OCI layout, and
/// a gzip-compressed legacy archive. The script needs root and the image tools: when
/// <see cref="Needs"/> is not met the fixture builds nothing and every test's
/// <see cref="HostPrerequisites.Ensure"/> skips (or, under MATCHLOCK_REQUIRE_VM=1, fails) it.
/// </summary>
public sealed class BaseImageFixture : IDisposable
{
    /// <summary>What the script and an import need; each test ensures it before touching the fixture.</summary>
    internal const HostNeeds Needs = HostNeeds.Root | HostNeeds.ImageTools;

    private readonly TempDir _temp = new();

    public BaseImageFixture()
    {
        Legacy = LegacyGzip = OciOnly = Docker25 = OciDirectory = ConfigDigest = LayerDigest = "";
        if (HostPrerequisites.Missing(Needs) is not null)
        {
            return;
        }

        var script = FindScript();
        Legacy = _temp.Combine("busybox-legacy.tar");
        var oci = _temp.Combine("oci");
        var result = ProcessRunner.RunAsync(script, [Legacy, "--oci-dir", oci], null, CancellationToken.None).GetAwaiter().GetResult();
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed ({result.ExitCode}): {result.StandardError}");
        }

        using (var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(oci, "index.json"))))
        {
            var manifestDigest = index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!;
            var manifestPath = Path.Combine(oci, "blobs", "sha256", manifestDigest["sha256:".Length..]);
            using var manifest = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
            ConfigDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
            LayerDigest = manifest.RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        }

        OciOnly = _temp.Combine("busybox-oci.tar");
        TarDirectory(oci, OciOnly, extra: null);

        // What `docker save` writes since Docker 25: the OCI layout plus a legacy manifest.json.
        Docker25 = _temp.Combine("busybox-docker25.tar");
        var manifestJson = $"[{{\"Config\":\"blobs/sha256/{ConfigDigest[7..]}\",\"RepoTags\":[\"busybox:latest\"],"
            + $"\"Layers\":[\"blobs/sha256/{LayerDigest[7..]}\"]}}]";
        TarDirectory(oci, Docker25, ("manifest.json", Encoding.UTF8.GetBytes(manifestJson)));

        LegacyGzip = _temp.Combine("busybox-legacy.tar.gz");
        using (var input = File.OpenRead(Legacy))
        using (var output = File.Create(LegacyGzip))
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            input.CopyTo(gzip);
        }

        OciDirectory = oci;
    }

    public string Legacy { get; }
    public string LegacyGzip { get; }
    public string OciOnly { get; }
    public string Docker25 { get; }
    public string OciDirectory { get; }
    public string ConfigDigest { get; }
    public string LayerDigest { get; }

    public string NewTempFile(string name) => _temp.Combine(name);

    public void Dispose() => _temp.Dispose();

    private static void TarDirectory(string directory, string output, (string Name, byte[] Data)? extra)
    {
        using var file = File.Create(output);
        using var writer = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var path in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            writer.WriteEntry(path, Path.GetRelativePath(directory, path));
        }

        if (extra is { } e)
        {
            TestArchive.Write(writer, e.Name, e.Data);
        }
    }

    private static string FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "scripts", "make-base-image.sh");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("scripts/make-base-image.sh not found above " + AppContext.BaseDirectory);
    }
}
