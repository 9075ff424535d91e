namespace Matchlock.Guest.Configuration;

/// <summary>
/// Makes the image trust the sandbox's interception CA (docs/ARCHITECTURE.md D4/D8): the PEM goes to
/// <c>/etc/ssl/certs/matchlock-ca.crt</c> and is appended to every distro bundle the image has,
/// so programs using the system store accept the proxy's leaves. When the image has no bundle
/// at all, the Debian one is created with just our CA.
/// </summary>
/// <remarks>
/// Idempotent: a bundle that already contains the PEM (a kept sandbox restarting, or two bundle
/// paths that are symlinks to one file, as on Alpine) is not appended to again.
/// </remarks>
internal static class TrustBundle
{
    internal const string CaPath = "etc/ssl/certs/matchlock-ca.crt";

    /// <summary>Debian/Ubuntu/Alpine, RHEL/Fedora, SUSE, Alpine and others; the first is created when none exists.</summary>
    internal static readonly string[] BundlePaths =
    [
        "etc/ssl/certs/ca-certificates.crt",
        "etc/pki/tls/certs/ca-bundle.crt",
        "etc/ssl/ca-bundle.pem",
        "etc/ssl/cert.pem",
    ];

    /// <summary>Writes the CA and extends the bundles under <paramref name="root"/>; returns the bundles it touched.</summary>
    internal static IReadOnlyList<string> Install(string root, string pem)
    {
        var text = pem.Replace("\r\n", "\n", StringComparison.Ordinal).Trim() + "\n";
        if (!text.StartsWith("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal) || text.Contains("PRIVATE KEY", StringComparison.Ordinal))
        {
            throw new ArgumentException("the CA must be one or more PEM certificates (and never a key)");
        }

        var caFile = Path.Combine(root, CaPath);
        Directory.CreateDirectory(Path.GetDirectoryName(caFile)!);
        File.WriteAllText(caFile, text);
        File.SetUnixFileMode(caFile, (UnixFileMode)0x1A4 /* 0644 */);

        var touched = new List<string>();
        foreach (var relative in BundlePaths)
        {
            var bundle = Path.Combine(root, relative);
            if (!File.Exists(bundle))
            {
                continue;
            }

            var existing = File.ReadAllText(bundle);
            if (!existing.Contains(text.Trim(), StringComparison.Ordinal))
            {
                File.AppendAllText(bundle, (existing.Length == 0 || existing.EndsWith('\n') ? "" : "\n") + text);
            }

            touched.Add("/" + relative);
        }

        if (touched.Count == 0)
        {
            var debian = Path.Combine(root, BundlePaths[0]);
            File.WriteAllText(debian, text);
            File.SetUnixFileMode(debian, (UnixFileMode)0x1A4);
            touched.Add("/" + BundlePaths[0]);
        }

        return touched;
    }
}
