using System.IO.Pipelines;

namespace Matchlock.Protocol.Tests;

/// <summary>A host and a guest <see cref="MuxConnection"/> joined by in-memory pipes.</summary>
internal sealed class PairedConnections : IAsyncDisposable
{
    private readonly Pipe _hostToGuest = new();
    private readonly Pipe _guestToHost = new();

    public PairedConnections(Func<MuxStream, Task> guestHandler, MuxOptions? options = null)
    {
        Host = new MuxConnection(_guestToHost.Reader.AsStream(), _hostToGuest.Writer.AsStream(), isHost: true, options: options);
        Guest = new MuxConnection(_hostToGuest.Reader.AsStream(), _guestToHost.Writer.AsStream(), isHost: false, guestHandler, options);
        Host.Start();
        Guest.Start();
    }

    public MuxConnection Host { get; }

    public MuxConnection Guest { get; }

    /// <summary>Raw access to what the host receives, for injecting corrupt frames.</summary>
    public Stream GuestToHostRaw => _guestToHost.Writer.AsStream();

    /// <summary>Simulates the link dying (VM gone): both directions end.</summary>
    public async Task BreakLinkAsync()
    {
        await _guestToHost.Writer.CompleteAsync();
        await _hostToGuest.Writer.CompleteAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Guest.DisposeAsync();
    }
}
