using System.Net;
using Matchlock.Core.Network.Policy;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Per-connection facts the request handler needs, set on the Kestrel connection's features by our
/// transport (original destination) and the TLS callback (SNI). Kestrel's request features fall
/// back to connection features, so handlers read it with <c>HttpContext.Features.Get</c>.
/// </summary>
internal sealed class ProxyConnectionFeature(IPEndPoint originalDestination)
{
    public IPEndPoint OriginalDestination { get; } = originalDestination;

    public bool IsTls { get; set; }

    /// <summary>The canonical SNI, or null when the client sent none.</summary>
    public HostName? Sni { get; set; }

    /// <summary>The raw SNI when it was not a valid host name (so the mismatch can be reported).</summary>
    public string? InvalidSni { get; set; }
}
