namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// The images every <see cref="RegistryFixture"/> pushes, built once per test run (they are
/// deterministic). Markers are unique per image, so a marker or an image id tells which one a
/// client took. Every good image shares the busybox base layer of its compression.
/// </summary>
public static class TestImageCatalog
{
    public static TestImage Gzip { get; } = TestImages.Busybox("oci-gzip");
    public static TestImage Zstd { get; } = TestImages.Busybox("oci-zstd", LayerCompression.Zstd);
    public static TestImage Uncompressed { get; } = TestImages.Busybox("oci-uncompressed", LayerCompression.None);
    public static TestImage Docker { get; } = TestImages.Busybox("docker-gzip", format: ManifestFormat.Docker);

    public static TestImage MultiAmd64 { get; } = TestImages.Busybox("multi-amd64");
    public static TestImage MultiArm64 { get; } = TestImages.Busybox("multi-arm64", architecture: "arm64");
    public static TestImage Multi { get; } = TestImages.Index(ManifestFormat.Oci, (MultiAmd64, "linux/amd64"), (MultiArm64, "linux/arm64/v8"));

    public static TestImage ListAmd64 { get; } = TestImages.Busybox("list-amd64", format: ManifestFormat.Docker);
    public static TestImage ListArm64 { get; } = TestImages.Busybox("list-arm64", format: ManifestFormat.Docker, architecture: "arm64");
    public static TestImage DockerList { get; } = TestImages.Index(ManifestFormat.Docker, (ListAmd64, "linux/amd64"), (ListArm64, "linux/arm64/v8"));

    /// <summary>An index with linux/arm64/v8 and linux/ppc64le only.</summary>
    public static TestImage NoAmd64 { get; } = TestImages.Index(ManifestFormat.Oci,
        (TestImages.Busybox("noamd64-arm64", architecture: "arm64"), "linux/arm64/v8"),
        (TestImages.Busybox("noamd64-ppc64le", architecture: "ppc64le"), "linux/ppc64le"));

    /// <summary>Two images with the same base layer and different top layers.</summary>
    public static TestImage SharedA { get; } = TestImages.Busybox("shared-a");
    public static TestImage SharedB { get; } = TestImages.Busybox("shared-b");

    /// <summary>Not pushed by the fixture: a test moves a tag to it (refresh with --pull).</summary>
    public static TestImage Next { get; } = TestImages.Busybox("next");

    public static TestImage PathTraversal { get; } = TestImages.PathTraversal();
    public static TestImage DeviceNode { get; } = TestImages.DeviceNode();
    public static TestImage WrongLayerMediaType { get; } = TestImages.WrongLayerMediaType();
    public static TestImage WrongConfigMediaType { get; } = TestImages.WrongConfigMediaType();
    public static TestImage AbsurdLayerSize { get; } = TestImages.AbsurdLayerSize();
    public static TestImage AbsurdConfigSize { get; } = TestImages.AbsurdConfigSize();

    /// <summary>Pushed intact, then its top layer is corrupted in the registry's storage (same length).</summary>
    public static TestImage Tampered { get; } = TestImages.Busybox("tampered");

    /// <summary>64 MiB of zeros in its top layer, ~64 KiB compressed: fits a download, not a small disk.</summary>
    public static TestImage Big { get; } = TestImages.Big(64);

    /// <summary>repository:tag → image, as the fixture pushes them.</summary>
    public static IReadOnlyDictionary<string, TestImage> Tags { get; } = new Dictionary<string, TestImage>(StringComparer.Ordinal)
    {
        ["busybox:1"] = Gzip,
        ["zstd:1"] = Zstd,
        ["uncompressed:1"] = Uncompressed,
        ["docker:1"] = Docker,
        ["multi:1"] = Multi,
        ["list:1"] = DockerList,
        ["noamd64:1"] = NoAmd64,
        ["shared-a:1"] = SharedA,
        ["shared-b:1"] = SharedB,
        ["bad/traversal:1"] = PathTraversal,
        ["bad/device:1"] = DeviceNode,
        ["bad/layer-type:1"] = WrongLayerMediaType,
        ["bad/config-type:1"] = WrongConfigMediaType,
        ["bad/absurd-layer:1"] = AbsurdLayerSize,
        ["bad/absurd-config:1"] = AbsurdConfigSize,
        ["bad/tampered:1"] = Tampered,
        ["big:1"] = Big,
    };
}
