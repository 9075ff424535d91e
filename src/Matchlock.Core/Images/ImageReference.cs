using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Matchlock.Core.Images;

/// <summary>
/// A normalised image name: <c>busybox</c>, <c>busybox:latest</c>, <c>library/busybox</c> and
/// <c>docker.io/library/busybox:latest</c> are the same reference, displayed <c>busybox:latest</c>.
/// Follows Docker's reference grammar (distribution/reference): the first component is a registry
/// when it contains '.' or ':' or is <c>localhost</c>; the default registry is <c>docker.io</c>,
/// whose one-component names live under <c>library/</c>; the default tag is <c>latest</c>.
/// Digest references (<c>name@sha256:…</c>) are not tags and are rejected.
/// </summary>
public sealed partial record ImageReference
{
    public const string DefaultRegistry = "docker.io";
    public const string DefaultTag = "latest";

    private ImageReference(string registry, string repository, string tag)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
    }

    /// <summary>Registry host (and port), e.g. <c>docker.io</c>, <c>localhost:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>Repository path within the registry, e.g. <c>library/busybox</c>.</summary>
    public string Repository { get; }

    /// <summary>Tag, e.g. <c>latest</c>.</summary>
    public string Tag { get; }

    /// <summary>Fully qualified form: <c>docker.io/library/busybox:latest</c>.</summary>
    public string FullName => $"{Registry}/{Repository}:{Tag}";

    /// <summary>Short canonical form used for display and as the store key: <c>busybox:latest</c>.</summary>
    public string DisplayName
    {
        get
        {
            if (Registry != DefaultRegistry)
            {
                return FullName;
            }

            var repo = Repository.StartsWith("library/", StringComparison.Ordinal)
                && Repository.IndexOf('/', "library/".Length) < 0
                ? Repository["library/".Length..]
                : Repository;
            return $"{repo}:{Tag}";
        }
    }

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

        if (reference.Contains('@', StringComparison.Ordinal))
        {
            error = "digest references are not supported for local images; use NAME[:TAG]";
            return false;
        }

        var name = reference;
        var tag = DefaultTag;
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

        parsed = new ImageReference(registry, name, tag);
        error = "";
        return true;
    }

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagRegex();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex ComponentRegex();

    [GeneratedRegex(@"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$")]
    private static partial Regex RegistryRegex();
}
