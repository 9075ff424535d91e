using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// A per-sandbox certificate authority that mints TLS server certificates for whatever host the
/// guest connects to, so the proxy can read and police HTTPS. Its certificate (<see cref="CertificatePem"/>)
/// is installed in the guest's trust stores; its key lives only in this process.
/// </summary>
/// <remarks>
/// ECDSA P-256 throughout, and one leaf key shared by every leaf of the sandbox: minting a leaf is then
/// a signature (~0.5 ms) instead of a key generation (RSA-2048: ~190 ms; docs/PLATFORM.md "TLS interception").
/// The leaves carry what <c>openssl verify -x509_strict</c> and browsers require: SAN (DNS or IP),
/// BasicConstraints CA:false, KeyUsage digitalSignature, EKU serverAuth, SKI and AKI. The
/// <see cref="SslStreamCertificateContext"/> (leaf + CA chain) is cached per host, at most
/// <see cref="MaxCachedLeaves"/> (the cache is reset when full: a guest inventing SNI names must not
/// grow our memory).
/// </remarks>
internal sealed class CertificateAuthority : IDisposable
{
    /// <summary>Bound on the per-host leaf cache.</summary>
    public const int MaxCachedLeaves = 4096;

    private readonly ECDsa _caKey;
    private readonly ECDsa _leafKey;
    private readonly X509Certificate2 _caPublic;
    private readonly X509Certificate2 _caWithKey;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<HostName, Lazy<SslStreamCertificateContext>> _leaves = new();

    private CertificateAuthority(ECDsa caKey, X509Certificate2 caWithKey, TimeProvider time)
    {
        _caKey = caKey;
        _caWithKey = caWithKey;
        _caPublic = X509CertificateLoader.LoadCertificate(caWithKey.RawData);
        _leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _time = time;
    }

    /// <summary>Creates a fresh CA valid from a day ago (guest clock skew) for <paramref name="lifetime"/> (default 1 year).</summary>
    public static CertificateAuthority Create(string commonName = "Matchlock sandbox CA", TimeSpan? lifetime = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var subject = new X500DistinguishedName($"CN={Escape(commonName)}, O=Matchlock");
            var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            var ski = new X509SubjectKeyIdentifierExtension(request.PublicKey, false);
            request.CertificateExtensions.Add(ski);
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(ski));
            var now = time.GetUtcNow();
            var cert = request.CreateSelfSigned(now.AddDays(-1), now + (lifetime ?? TimeSpan.FromDays(365)));
            return new CertificateAuthority(key, cert, time);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>The CA certificate (public part only).</summary>
    public X509Certificate2 Certificate => _caPublic;

    /// <summary>The CA certificate in PEM, for the guest's trust stores.</summary>
    public string CertificatePem => _caPublic.ExportCertificatePem() + "\n";

    /// <summary>The TLS context (leaf + chain) for a host, minted on first use and cached.</summary>
    public SslStreamCertificateContext GetServerContext(HostName host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (_leaves.Count >= MaxCachedLeaves)
        {
            _leaves.Clear();
        }

        return _leaves.GetOrAdd(host, h => new Lazy<SslStreamCertificateContext>(() =>
            SslStreamCertificateContext.Create(IssueLeaf(h), [_caPublic], offline: true))).Value;
    }

    /// <summary>Mints a leaf for <paramref name="host"/> (with the shared leaf key); not cached.</summary>
    public X509Certificate2 IssueLeaf(HostName host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={Escape(host.Value)}"), _leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        if (host.IsIPAddress)
        {
            san.AddIpAddress(host.Address);
        }
        else
        {
            san.AddDnsName(host.Value);
        }

        request.CertificateExtensions.Add(san.Build(false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "serverAuth")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_caPublic, true, false));

        var now = _time.GetUtcNow();
        var notAfter = now.AddDays(90) < _caPublic.NotAfter ? now.AddDays(90) : new DateTimeOffset(_caPublic.NotAfter.ToUniversalTime());
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f; // positive INTEGER (RFC 5280 §4.1.2.2)
        serial[0] |= 0x01; // and never zero-led, so no encoder strips it to a shorter value
        using var leaf = request.Create(_caWithKey, now.AddHours(-1), notAfter, serial);
        return leaf.CopyWithPrivateKey(_leafKey);
    }

    public void Dispose()
    {
        _caWithKey.Dispose();
        _caPublic.Dispose();
        _caKey.Dispose();
        _leafKey.Dispose();
    }

    /// <summary>Quotes a value for an X.500 name so commas or '=' in it cannot add attributes.</summary>
    private static string Escape(string value) => "\"" + value.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
