using System.Formats.Tar;
using System.Text;
using Matchlock.Core.Tests.Images;

namespace Matchlock.Integration.Tests.Images;

/// <summary>Builds small `docker save` archives in memory (legacy layout) from layer tars.</summary>
internal static class TestArchive
{
    public sealed record Image(string[] Tags, byte[][] Layers, string Cmd = "sh", bool GzipLayers = false, bool ZstdLayers = false);

    public static string ConfigJson(byte[][] uncompressedLayers, string cmd) =>
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\""
        + cmd + "\"],\"WorkingDir\":\"/work\",\"User\":\"1000:1000\",\"Entrypoint\":[\"/bin/entry\"],"
        + "\"ExposedPorts\":{\"8080/tcp\":{}},\"Labels\":{\"a\":\"b\"}},"
        + "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
        + string.Join(",", uncompressedLayers.Select(l => $"\"{TestTar.Sha256(l)}\"")) + "]}}";

    public static byte[] Legacy(params Image[] images)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            var manifest = new List<string>();
            foreach (var image in images)
            {
                var config = Encoding.UTF8.GetBytes(ConfigJson(image.Layers, image.Cmd));
                var configName = TestTar.Sha256(config)["sha256:".Length..] + ".json";
                Write(writer, configName, config);
                var layerNames = new List<string>();
                foreach (var layer in image.Layers)
                {
                    var name = TestTar.Sha256(layer)["sha256:".Length..] + "/layer.tar";
                    Write(writer, name, image.GzipLayers ? TestTar.Gzip(layer) : image.ZstdLayers ? TestTar.Zstd(layer) : layer);
                    layerNames.Add(name);
                }

                manifest.Add($"{{\"Config\":\"{configName}\",\"RepoTags\":[{string.Join(",", image.Tags.Select(t => $"\"{t}\""))}],"
                    + $"\"Layers\":[{string.Join(",", layerNames.Select(l => $"\"{l}\""))}]}}");
            }

            Write(writer, "manifest.json", Encoding.UTF8.GetBytes("[" + string.Join(",", manifest) + "]"));
        }

        return buffer.ToArray();
    }

    public static void Write(TarWriter writer, string name, byte[] data)
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) };
        writer.WriteEntry(entry);
    }
}
