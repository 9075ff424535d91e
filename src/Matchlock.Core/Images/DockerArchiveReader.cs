using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Images;

/// <summary>One layer picked from an archive: its scratch file, how to name it in errors, and its expected diff id.</summary>
internal sealed record ArchiveLayer(string File, string Label, string? DiffId);

/// <summary>The image picked from an archive, with every digest the archive names already verified.</summary>
internal sealed record ArchiveImage(string Id, byte[] ConfigBytes, ImageConfig Config, IReadOnlyList<ArchiveLayer> Layers);

/// <summary>
/// Finds the image in a <c>docker save</c> archive, in either layout: legacy (<c>manifest.json</c>
/// listing Config and Layers paths; skopeo and Docker &lt; 25) or OCI image layout
/// (<c>index.json</c> → manifest blob → config and layer blobs under <c>blobs/sha256/</c>). Docker
/// ≥ 25 writes both; <c>manifest.json</c> is used then, and blobs are still verified by the digest
/// in their path. Layer tars are checked against the config's <c>rootfs.diff_ids</c> while they
/// are applied (see <see cref="ImageStore"/>).
/// </summary>
internal static partial class DockerArchiveReader
{
    private const int MaxIndexDepth = 4;

    private sealed record Candidate(
        IReadOnlyList<string> Names, IReadOnlyList<string> TagOnlyNames, string ConfigPath, string? ConfigDigest,
        IReadOnlyList<(string Path, string? Digest)> Layers);

    public static async Task<ArchiveImage> SelectAsync(ArchiveContents archive, ImageReference requested, CancellationToken cancellationToken)
    {
        List<Candidate> candidates;
        if (archive.Contains("manifest.json"))
        {
            candidates = await FromDockerManifestAsync(archive, cancellationToken);
        }
        else if (archive.Contains("index.json"))
        {
            candidates = [];
            var index = Parse(await archive.ReadAllBytesAsync("index.json", "index.json", cancellationToken), "index.json", ImageJsonContext.Default.OciIndexDto);
            await FromOciIndexAsync(archive, index, [], depth: 0, candidates, cancellationToken);
        }
        else
        {
            var seen = string.Join(", ", archive.Names.Take(8));
            throw new ImageFormatException(
                $"not a `docker save` archive: it has neither manifest.json nor index.json (members: {seen}); "
                + "create one with `docker save IMAGE > image.tar` or `skopeo copy ... docker-archive:image.tar`");
        }

        var chosen = Choose(candidates, requested);
        var configBytes = await archive.ReadAllBytesAsync(chosen.ConfigPath, "image config", cancellationToken);
        var id = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(configBytes));
        if (chosen.ConfigDigest is { } expected && expected != id)
        {
            throw new ImageFormatException(
                $"image config \"{chosen.ConfigPath}\" is corrupt: its digest is {id}, the archive says {expected}");
        }

        var config = ImageConfig.Parse(configBytes);
        if (config.DiffIds.Count != 0 && config.DiffIds.Count != chosen.Layers.Count)
        {
            throw new ImageFormatException(
                $"image config lists {config.DiffIds.Count} layer diff ids but the manifest has {chosen.Layers.Count} layers");
        }

        var layers = new List<ArchiveLayer>();
        for (var i = 0; i < chosen.Layers.Count; i++)
        {
            var (path, digest) = chosen.Layers[i];
            var diffId = config.DiffIds.Count == 0 ? null : config.DiffIds[i];
            var label = $"layer {i + 1} ({LayerStreams.Short(digest ?? diffId ?? path)})";
            var file = archive.GetFile(path, label);
            if (digest is not null)
            {
                var actual = "sha256:" + await LayerStreams.Sha256FileAsync(file, cancellationToken);
                if (actual != digest)
                {
                    throw new ImageFormatException($"{label} is corrupt: its digest is {actual}, the archive says {digest}");
                }
            }

            layers.Add(new ArchiveLayer(file, label, diffId));
        }

        return new ArchiveImage(id, configBytes, config, layers);
    }

    private static async Task<List<Candidate>> FromDockerManifestAsync(ArchiveContents archive, CancellationToken cancellationToken)
    {
        var entries = Parse(await archive.ReadAllBytesAsync("manifest.json", "manifest.json", cancellationToken),
            "manifest.json", ImageJsonContext.Default.ListDockerManifestEntryDto);
        var candidates = new List<Candidate>();
        foreach (var entry in entries)
        {
            if (string.IsNullOrEmpty(entry.Config) || entry.Layers is null)
            {
                throw new ImageFormatException("manifest.json: an entry has no Config or no Layers");
            }

            candidates.Add(new Candidate(
                entry.RepoTags ?? [], [], entry.Config, DigestFromPath(entry.Config),
                [.. entry.Layers.Select(l => (l, DigestFromPath(l)))]));
        }

        return candidates;
    }

    private static async Task FromOciIndexAsync(
        ArchiveContents archive, OciIndexDto index, IReadOnlyList<string> inheritedNames, int depth,
        List<Candidate> candidates, CancellationToken cancellationToken)
    {
        if (depth > MaxIndexDepth)
        {
            throw new ImageFormatException("index.json: image indexes nest too deeply");
        }

        foreach (var descriptor in index.Manifests ?? [])
        {
            var annotations = descriptor.Annotations ?? [];
            if (annotations.ContainsKey("vnd.docker.reference.type"))
            {
                continue; // BuildKit attestation manifests, not images.
            }

            if (descriptor.Platform is { } platform
                && (platform.Os != "linux" || platform.Architecture != HostArchitecture))
            {
                continue;
            }

            var names = new List<string>(inheritedNames);
            var tagOnly = new List<string>();
            if (annotations.TryGetValue("io.containerd.image.name", out var fullName))
            {
                names.Add(fullName);
            }

            if (annotations.TryGetValue("org.opencontainers.image.ref.name", out var refName))
            {
                // Either a whole reference or, per the image-layout spec's common use, just a tag.
                (refName.Contains('/', StringComparison.Ordinal) || refName.Contains(':', StringComparison.Ordinal) ? names : tagOnly).Add(refName);
            }

            var blob = await ReadBlobAsync(archive, descriptor.Digest, "index.json", cancellationToken);
            var nested = Parse(blob, $"blob {descriptor.Digest}", ImageJsonContext.Default.OciIndexDto);
            if (nested.Manifests is not null)
            {
                await FromOciIndexAsync(archive, nested, names, depth + 1, candidates, cancellationToken);
                continue;
            }

            var manifest = Parse(blob, $"manifest {descriptor.Digest}", ImageJsonContext.Default.OciManifestDto);
            if (manifest.Config?.Digest is not { } configDigest || manifest.Layers is null)
            {
                throw new ImageFormatException($"manifest {descriptor.Digest} has no config or no layers");
            }

            candidates.Add(new Candidate(
                names, tagOnly, BlobPath(configDigest, "manifest config"), configDigest,
                [.. manifest.Layers.Select(l => (BlobPath(l.Digest, "manifest layer"), (string?)l.Digest))]));
        }
    }

    private static Candidate Choose(List<Candidate> candidates, ImageReference requested)
    {
        if (candidates.Count == 1)
        {
            return candidates[0];
        }

        if (candidates.Count == 0)
        {
            throw new ImageFormatException($"the archive holds no linux/{HostArchitecture} image");
        }

        var byName = candidates.Where(c => c.Names.Any(n => Same(n, requested))).ToList();
        if (byName.Count == 0)
        {
            byName = [.. candidates.Where(c => c.TagOnlyNames.Contains(requested.Tag))];
        }

        if (byName.Count == 1)
        {
            return byName[0];
        }

        var tags = candidates.SelectMany(c => c.Names.Concat(c.TagOnlyNames)).Distinct().ToList();
        throw new ImageFormatException(
            $"the archive holds {candidates.Count} images ({(tags.Count == 0 ? "untagged" : string.Join(", ", tags))}); "
            + $"{(byName.Count == 0 ? "none is" : "several are")} tagged \"{requested}\": import it under one of its own tags");
    }

    private static bool Same(string name, ImageReference requested) =>
        ImageReference.TryParse(name, out var parsed) && parsed == requested;

    private static async Task<byte[]> ReadBlobAsync(ArchiveContents archive, string? digest, string context, CancellationToken cancellationToken)
    {
        var bytes = await archive.ReadAllBytesAsync(BlobPath(digest, context), context, cancellationToken);
        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        return actual == digest
            ? bytes
            : throw new ImageFormatException($"blob {digest} is corrupt: its digest is {actual}");
    }

    private static string BlobPath(string? digest, string context) =>
        LayerStreams.IsSha256Digest(digest)
            ? "blobs/sha256/" + digest!["sha256:".Length..]
            : throw new ImageFormatException($"{context}: digest \"{digest}\" is not a sha256 digest (sha256:<64 hex>)");

    /// <summary>The digest a path names: OCI <c>blobs/sha256/HEX</c>, or Docker's config file <c>HEX.json</c>.</summary>
    private static string? DigestFromPath(string path)
    {
        var match = DigestPathRegex().Match(path);
        return match.Success ? "sha256:" + match.Groups["hex"].Value : null;
    }

    private static T Parse<T>(byte[] json, string what, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ImageFormatException($"{what} is empty (JSON null)");
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"{what} is not valid JSON: {e.Message}", e);
        }
    }

    private static string HostArchitecture => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        var other => other.ToString().ToLowerInvariant(),
    };

    [GeneratedRegex(@"^(?:\./)?(?:blobs/sha256/(?<hex>[0-9a-f]{64})|(?<hex>[0-9a-f]{64})\.json)$")]
    private static partial Regex DigestPathRegex();
}
