using System.Runtime.InteropServices;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// An OCI platform (<c>os/architecture[/variant]</c>) as used to pick an image out of an index.
/// Names are the Go ones registries use (<c>amd64</c>, <c>arm64</c>); <see cref="Parse"/> also takes
/// the kernel spellings <c>x86_64</c> and <c>aarch64</c> because that is what <c>uname -m</c> says.
/// </summary>
public sealed record Platform(string Os, string Architecture, string? Variant = null)
{
    /// <summary><c>linux/amd64</c>.</summary>
    public static Platform Default { get; } = new("linux", "amd64");

    /// <summary>Linux on this machine's architecture (what a microVM here can run without emulation).</summary>
    public static Platform Host { get; } = RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => new("linux", "arm64"),
        System.Runtime.InteropServices.Architecture.Arm => new("linux", "arm", "v7"),
        _ => Default,
    };

    /// <summary>Parses <c>os/arch</c> or <c>os/arch/variant</c>, e.g. <c>linux/arm64/v8</c>.</summary>
    /// <exception cref="ArgumentException">The text is not of that form.</exception>
    public static Platform Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().ToLowerInvariant().Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new ArgumentException(
                $"invalid platform \"{text}\": use OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64 or linux/arm64/v8", nameof(text));
        }

        return new Platform(parts[0], NormaliseArchitecture(parts[1]), parts.Length == 3 ? parts[2] : null);
    }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    /// <summary>
    /// Whether an index entry's platform serves this one. The variant only counts when this platform
    /// names one; for arm64 a missing variant means v8, as in containerd's platform matcher.
    /// </summary>
    internal bool IsMatchedBy(string? os, string? architecture, string? variant)
    {
        if (!string.Equals(os, Os, StringComparison.OrdinalIgnoreCase)
            || !string.Equals(NormaliseArchitecture(architecture ?? ""), Architecture, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return Variant is null
            || string.Equals(NormaliseVariant(Architecture, variant), NormaliseVariant(Architecture, Variant), StringComparison.OrdinalIgnoreCase);
    }

    internal static string Describe(string? os, string? architecture, string? variant) =>
        variant is null or "" ? $"{os}/{architecture}" : $"{os}/{architecture}/{variant}";

    private static string NormaliseArchitecture(string architecture) => architecture.ToLowerInvariant() switch
    {
        "x86_64" or "x86-64" => "amd64",
        "aarch64" => "arm64",
        var other => other,
    };

    private static string? NormaliseVariant(string architecture, string? variant) =>
        architecture == "arm64" && string.IsNullOrEmpty(variant) ? "v8" : variant;
}
