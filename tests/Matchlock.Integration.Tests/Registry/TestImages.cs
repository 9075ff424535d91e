using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Matchlock.Integration.Tests.Registry;

public enum LayerCompression
{
    None,
    Gzip,
    Zstd,
}

public enum ManifestFormat
{
    /// <summary>OCI image manifest / OCI image index.</summary>
    Oci,

    /// <summary>Docker image manifest v2 schema 2 / manifest list.</summary>
    Docker,
}

/// <summary>
/// Test images built in memory: a runnable busybox (the host's static <c>/bin/busybox</c> and its
/// applet links, as scripts/make-base-image.sh lays it out) plus a small top layer with
/// <see cref="MarkerPath"/>, so a test can tell variants apart; indexes; and deliberately bad images.
/// </summary>
public static class TestImages
{
    /// <summary>File in every good test image; its content is the image's marker and a newline.</summary>
    public const string MarkerPath = "/etc/matchlock-test";

    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private static readonly Lazy<byte[]> BusyboxTar = new(BuildBusyboxTar);

    /// <summary>The uncompressed busybox base layer (the same bytes every time).</summary>
    public static byte[] BusyboxLayer => BusyboxTar.Value;

    /// <summary>A top layer holding only <see cref="MarkerPath"/>.</summary>
    public static byte[] MarkerLayer(string marker) =>
        new LayerBuilder().Directory("etc").File(MarkerPath[1..], marker + "\n").Build();

    /// <summary>Busybox base + marker layer: runnable, <c>cat /etc/matchlock-test</c> prints the marker.</summary>
    public static TestImage Busybox(string marker, LayerCompression compression = LayerCompression.Gzip, ManifestFormat format = ManifestFormat.Oci, string architecture = "amd64") =>
        FromLayers(format, compression, [BusyboxLayer, MarkerLayer(marker)], architecture) with { Marker = marker };

    /// <summary>A single-platform image from uncompressed layer tars.</summary>
    /// <param name="editManifest">Changes the manifest before it is serialized (bad images).</param>
    public static TestImage FromLayers(
        ManifestFormat format, LayerCompression compression, IReadOnlyList<byte[]> layerTars, string architecture = "amd64",
        Action<JsonObject>? editManifest = null, string? configMediaType = null)
    {
        var layers = layerTars.Select(t => Layer(t, compression, format)).ToList();
        var config = new JsonObject
        {
            ["architecture"] = architecture,
            ["os"] = "linux",
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray(DefaultPath),
                ["Cmd"] = new JsonArray("sh"),
            },
            ["rootfs"] = new JsonObject
            {
                ["type"] = "layers",
                ["diff_ids"] = new JsonArray([.. layerTars.Select(t => (JsonNode)("sha256:" + Convert.ToHexStringLower(SHA256.HashData(t))))]),
            },
        };
        var configBlob = Json(configMediaType ?? (format == ManifestFormat.Oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig), config);

        var manifestType = format == ManifestFormat.Oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest;
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = manifestType,
            ["config"] = configBlob.Descriptor(),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)l.Descriptor())]),
        };
        editManifest?.Invoke(manifest);
        return new TestImage(Json(manifestType, manifest), [configBlob, .. layers], []) { Config = configBlob, Layers = layers };
    }

    /// <summary>An OCI index or Docker manifest list over platform images; platform is <c>os/arch[/variant]</c>.</summary>
    public static TestImage Index(ManifestFormat format, params (TestImage Image, string Platform)[] entries)
    {
        var manifests = new JsonArray();
        foreach (var (image, platform) in entries)
        {
            var parts = platform.Split('/');
            var p = new JsonObject { ["architecture"] = parts[1], ["os"] = parts[0] };
            if (parts.Length > 2)
            {
                p["variant"] = parts[2];
            }

            var descriptor = image.Manifest.Descriptor();
            descriptor["platform"] = p;
            manifests.Add(descriptor);
        }

        var type = format == ManifestFormat.Oci ? MediaTypes.OciIndex : MediaTypes.DockerManifestList;
        var index = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = type, ["manifests"] = manifests };
        return new TestImage(Json(type, index), [], [.. entries.Select(e => e.Image)]);
    }

    /// <summary>A layer whose file climbs out of the root: <c>../../etc/evil</c>.</summary>
    public static TestImage PathTraversal() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip,
            [BusyboxLayer, new LayerBuilder().Directory("etc").File("../../etc/evil", "escaped\n").Build()]);

    /// <summary>A top layer of <paramref name="megabytes"/> MiB of zeros: tiny compressed, big on disk (for full-disk tests).</summary>
    public static TestImage Big(int megabytes) =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip,
            [BusyboxLayer, new LayerBuilder().Directory("data").File("data/zeros", new byte[megabytes << 20]).Build()]);

    /// <summary>A layer with a character device node (<c>/dev/evil</c>, 1:1 = /dev/mem).</summary>
    public static TestImage DeviceNode() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip,
            [BusyboxLayer, new LayerBuilder().Directory("dev").CharacterDevice("dev/evil", 1, 1).Build()]);

    /// <summary>An OCI manifest whose top layer claims a media type no runtime unpacks.</summary>
    public static TestImage WrongLayerMediaType() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip, [BusyboxLayer, MarkerLayer("wrong-layer-type")],
            editManifest: m => m["layers"]![1]!["mediaType"] = "application/vnd.example.not-a-layer");

    /// <summary>An OCI manifest whose config is not an image config (an artifact, e.g. a Helm chart).</summary>
    public static TestImage WrongConfigMediaType() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip, [BusyboxLayer, MarkerLayer("wrong-config-type")],
            configMediaType: "application/vnd.example.not-an-image-config");

    /// <summary>A manifest whose top layer descriptor claims 1 TB (the blob itself is small).</summary>
    public static TestImage AbsurdLayerSize() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip, [BusyboxLayer, MarkerLayer("absurd-layer-size")],
            editManifest: m => m["layers"]![1]!["size"] = 1L << 40);

    /// <summary>A manifest whose config descriptor claims 1 TB.</summary>
    public static TestImage AbsurdConfigSize() =>
        FromLayers(ManifestFormat.Oci, LayerCompression.Gzip, [BusyboxLayer, MarkerLayer("absurd-config-size")],
            editManifest: m => m["config"]!["size"] = 1L << 40);

    /// <summary>Compresses a layer tar and gives it the media type of <paramref name="format"/>.</summary>
    public static Blob Layer(byte[] tar, LayerCompression compression, ManifestFormat format) => (compression, format) switch
    {
        (LayerCompression.None, ManifestFormat.Oci) => new Blob(MediaTypes.OciLayer, tar),
        (LayerCompression.Gzip, ManifestFormat.Oci) => new Blob(MediaTypes.OciLayerGzip, Gzip(tar)),
        (LayerCompression.Zstd, ManifestFormat.Oci) => new Blob(MediaTypes.OciLayerZstd, Zstd(tar)),
        (LayerCompression.None, ManifestFormat.Docker) => new Blob(MediaTypes.DockerLayer, tar),
        (LayerCompression.Gzip, ManifestFormat.Docker) => new Blob(MediaTypes.DockerLayerGzip, Gzip(tar)),
        _ => throw new ArgumentException($"Docker schema 2 has no {compression} layer media type", nameof(compression)),
    };

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var compressor = new ZstdSharp.Compressor(3);
        return compressor.Wrap(data).ToArray();
    }

    private static Blob Json(string mediaType, JsonObject json) => new(mediaType, Encoding.UTF8.GetBytes(json.ToJsonString()));

    private static byte[] BuildBusyboxTar()
    {
        const string busybox = "/bin/busybox";
        var layer = new LayerBuilder();
        foreach (var dir in new[] { "bin", "dev", "etc", "home", "proc", "run", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var" })
        {
            layer.Directory(dir);
        }

        layer.Directory("tmp", "1777").Directory("root", "700")
            .File("bin/busybox", File.ReadAllBytes(busybox), "755")
            .File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
            .File("etc/group", "root:x:0:\nnogroup:x:65534:\n");

        // Applet links point at the absolute path: they resolve inside the guest, never on the host.
        var psi = new ProcessStartInfo(busybox, "--list-full") { RedirectStandardOutput = true, UseShellExecute = false };
        using var list = Process.Start(psi) ?? throw new InvalidOperationException("could not run busybox --list-full");
        var applets = list.StandardOutput.ReadToEnd();
        list.WaitForExit();
        foreach (var applet in applets.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (applet != "bin/busybox")
            {
                layer.Symlink(applet, "/bin/busybox");
            }
        }

        return layer.Build();
    }
}
