using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// A normalised image name: <c>busybox</c>, <c>busybox:latest</c>, <c>library/busybox</c> and
/// <c>docker.io/library/busybox:latest</c> are the same reference, displayed <c>busybox:latest</c>.
/// Follows Docker's reference grammar (distribution/reference): the first component is a registry
/// when it contains '.' or ':' or is <c>localhost</c>; the default registry is <c>docker.io</c>,
/// whose one-component names live under <c>library/</c>; the default tag is <c>latest</c>.
/// A reference may pin a digest (<c>alpine@sha256:…</c>, <c>alpine:3.20@sha256:…</c>): the digest
/// then decides what is pulled and the tag, if any, is only a label, so <see cref="DisplayName"/>
/// drops it like Docker's pinned references do. Only <c>sha256</c> digests are accepted because
/// that is the only algorithm we verify.
/// </summary>
public sealed partial record ImageReference
{
    public const string DefaultRegistry = "docker.io";
    public const string DefaultTag = "latest";

    /// <summary>Host that serves Docker Hub's registry API; <c>docker.io</c> itself only redirects browsers.</summary>
    public const string DockerHubRegistryHost = "registry-1.docker.io";

    private ImageReference(string registry, string repository, string? tag, string? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>Registry host (and port), e.g. <c>docker.io</c>, <c>localhost:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>Repository path within the registry, e.g. <c>library/busybox</c>.</summary>
    public string Repository { get; }

    /// <summary>
    /// Tag, e.g. <c>latest</c>; <see cref="DefaultTag"/> when the reference names neither a tag nor a
    /// digest, and null when it names only a digest (there is no tag to guess then).
    /// </summary>
    public string? Tag { get; }

    /// <summary>Pinned manifest digest, <c>sha256:</c> and 64 lower-case hex digits, or null.</summary>
    public string? Digest { get; }

    /// <summary>What the registry is asked for: the digest when pinned, else the tag.</summary>
    public string ManifestReference => Digest ?? Tag ?? DefaultTag;

    /// <summary>
    /// Host[:port] that serves the registry API: <see cref="Registry"/>, except Docker Hub whose API is
    /// at <see cref="DockerHubRegistryHost"/>.
    /// </summary>
    public string RegistryHost => Registry == DefaultRegistry ? DockerHubRegistryHost : Registry;

    /// <summary>
    /// Fully qualified form: <c>docker.io/library/busybox:latest</c>; with a digest
    /// <c>docker.io/library/busybox:1.36@sha256:…</c> (the tag kept, as written).
    /// </summary>
    public string FullName => $"{Registry}/{Repository}{Suffix(includeTagWithDigest: true)}";

    /// <summary>Short canonical form used for display and as the store key: <c>busybox:latest</c>.</summary>
    public string DisplayName
    {
        get
        {
            if (Registry != DefaultRegistry)
            {
                return $"{Registry}/{Repository}{Suffix(includeTagWithDigest: false)}";
            }

            var repo = Repository.StartsWith("library/", StringComparison.Ordinal)
                && Repository.IndexOf('/', "library/".Length) < 0
                ? Repository["library/".Length..]
                : Repository;
            return repo + Suffix(includeTagWithDigest: false);
        }
    }

    /// <summary>The same repository under <paramref name="tag"/>, without a digest (what a pull tags locally).</summary>
    public ImageReference WithTag(string tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        return TagRegex().IsMatch(tag)
            ? new ImageReference(Registry, Repository, tag, null)
            : throw new ArgumentException($"invalid tag \"{tag}\": must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}", nameof(tag));
    }

    /// <summary>The same repository pinned to <paramref name="digest"/>, without a tag (what a pull records as <c>name@digest</c>).</summary>
    public ImageReference WithDigest(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        return TryValidateDigest(digest, out var error)
            ? new ImageReference(Registry, Repository, null, digest)
            : throw new ArgumentException($"invalid digest \"{digest}\": {error}", nameof(digest));
    }

    private string Suffix(bool includeTagWithDigest) => (Tag, Digest) switch
    {
        (_, null) => $":{Tag ?? DefaultTag}",
        (null, _) => $"@{Digest}",
        _ => includeTagWithDigest ? $":{Tag}@{Digest}" : $"@{Digest}",
    };

    public override string ToString() => DisplayName;

    /// <summary>Parses a reference, throwing <see cref="ArgumentException"/> with the reason when invalid.</summary>
    public static ImageReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return TryParse(reference, out var parsed, out var error)
            ? parsed
            : throw new ArgumentException($"invalid image reference \"{reference}\": {error}", nameof(reference));
    }

    public static bool TryParse(string? reference, [NotNullWhen(true)] out ImageReference? parsed) =>
        TryParse(reference, out parsed, out _);

    private static bool TryParse(string? reference, [NotNullWhen(true)] out ImageReference? parsed, out string error)
    {
        parsed = null;
        if (string.IsNullOrWhiteSpace(reference))
        {
            error = "empty";
            return false;
        }

        string? digest = null;
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = reference[(at + 1)..];
            reference = reference[..at];
            if (!TryValidateDigest(digest, out error))
            {
                return false;
            }
        }

        var name = reference;
        string? tag = digest is null ? DefaultTag : null;
        var lastSlash = reference.LastIndexOf('/');
        var colon = reference.LastIndexOf(':');
        if (colon > lastSlash)
        {
            name = reference[..colon];
            tag = reference[(colon + 1)..];
            if (!TagRegex().IsMatch(tag))
            {
                error = $"tag \"{tag}\" must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}";
                return false;
            }
        }

        var registry = DefaultRegistry;
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0)
        {
            var first = name[..slash];
            if (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal)
                || first == "localhost")
            {
                registry = first;
                name = name[(slash + 1)..];
                if (!RegistryRegex().IsMatch(registry))
                {
                    error = $"registry \"{registry}\" is not a valid host[:port]";
                    return false;
                }
            }
        }

        // Docker Hub answers to several names; they all mean docker.io.
        if (registry is "index.docker.io" or "registry-1.docker.io")
        {
            registry = DefaultRegistry;
        }

        foreach (var component in name.Split('/'))
        {
            if (!ComponentRegex().IsMatch(component))
            {
                error = $"repository component \"{component}\" must be lower-case letters, digits and separators (. _ __ -)";
                return false;
            }
        }

        if (registry == DefaultRegistry && !name.Contains('/', StringComparison.Ordinal))
        {
            name = "library/" + name;
        }

        parsed = new ImageReference(registry, name, tag, digest);
        error = "";
        return true;
    }

    private static bool TryValidateDigest(string digest, out string error)
    {
        var colon = digest.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            error = "a digest is ALGORITHM:HEX, e.g. sha256:<64 hex digits>";
            return false;
        }

        if (digest[..colon] != "sha256")
        {
            error = $"digest algorithm \"{digest[..colon]}\" is not supported; only sha256 digests can be verified";
            return false;
        }

        if (!Sha256DigestRegex().IsMatch(digest))
        {
            error = "a sha256 digest is \"sha256:\" and 64 lower-case hex digits";
            return false;
        }

        error = "";
        return true;
    }

    [GeneratedRegex("^sha256:[a-f0-9]{64}$")]
    private static partial Regex Sha256DigestRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentRegex();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$")]
    private static partial Regex RegistryRegex();
}
