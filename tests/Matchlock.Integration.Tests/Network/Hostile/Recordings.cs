using System.Collections.Concurrent;
using System.Text;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// One thing an upstream received: a connection's bytes, a request, a datagram, a DNS query.
/// <see cref="Text"/> is the bytes as Latin-1 (one char per byte, so binary survives and ASCII
/// markers are searchable); it grows while the connection lives, so read it through <see cref="Snapshot"/>.
/// </summary>
internal sealed class Recorded(string sink, bool overTls)
{
    private readonly StringBuilder _text = new(); // guarded by itself

    /// <summary>Which upstream: "tcp", "tls", "web-https", "dns", "udp"…</summary>
    public string Sink { get; } = sink;

    /// <summary>Whether the bytes arrived inside TLS (decrypted here).</summary>
    public bool OverTls { get; } = overTls;

    /// <summary>The TLS server name, or the request's Host for the HTTP servers, when known.</summary>
    public string? Host { get; set; }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        lock (_text)
        {
            _text.Append(Encoding.Latin1.GetString(bytes));
        }
    }

    public void Append(string text)
    {
        lock (_text)
        {
            _text.Append(text);
        }
    }

    public string Snapshot()
    {
        lock (_text)
        {
            return _text.ToString();
        }
    }
}

/// <summary>Everything every recording upstream of one run received, in arrival order.</summary>
internal sealed class Recordings
{
    private readonly ConcurrentQueue<Recorded> _all = new();

    public Recorded Open(string sink, bool overTls = false)
    {
        var r = new Recorded(sink, overTls);
        _all.Enqueue(r);
        return r;
    }

    public IReadOnlyList<Recorded> All => [.. _all];
}
