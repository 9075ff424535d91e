using System.IO.Pipelines;
using Matchlock.Guest.Agent;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;

namespace Matchlock.Guest.Tests.Vfs;

/// <summary>
/// A virtiofs mount's stream (docs/VFS.md "vhost-user transport"): no FUSE traffic, only the
/// host's end of stdin (unmount, ok), the power-off's stop, or a lost link ends it.
/// </summary>
public sealed class VirtiofsSessionTests : IAsyncDisposable
{
    private readonly Pipe _hostToGuest = new();
    private readonly Pipe _guestToHost = new();
    private readonly MuxConnection _host;
    private readonly MuxConnection _guest;
    private readonly TaskCompletionSource<VirtiofsSession> _session = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<FuseRelayOutcome> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public VirtiofsSessionTests()
    {
        _host = new MuxConnection(_guestToHost.Reader.AsStream(), _hostToGuest.Writer.AsStream(), isHost: true);
        _guest = new MuxConnection(_hostToGuest.Reader.AsStream(), _guestToHost.Writer.AsStream(), isHost: false, async stream =>
        {
            var session = new VirtiofsSession(stream);
            _session.TrySetResult(session);
            _outcome.TrySetResult(await session.RunAsync());
        });
        _host.Start();
        _guest.Start();
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _guest.DisposeAsync();
    }

    [Fact]
    public async Task Bytes_on_stdin_are_ignored_and_its_end_is_the_hosts_close()
    {
        var stream = await _host.OpenAsync("{}"u8.ToArray(), Token);
        await stream.WriteAsync(StreamChannel.Stdin, "ignored"u8.ToArray(), Token);
        await Task.Delay(50, Token);
        Assert.False(_outcome.Task.IsCompleted);
        await stream.WriteEofAsync(StreamChannel.Stdin, Token);
        Assert.Equal(FuseRelayEnd.HostClosed, (await _outcome.Task.WaitAsync(TimeSpan.FromSeconds(10), Token)).End);
    }

    [Fact]
    public async Task The_power_off_stops_it()
    {
        _ = await _host.OpenAsync("{}"u8.ToArray(), Token);
        var session = await _session.Task.WaitAsync(TimeSpan.FromSeconds(10), Token);
        session.Stop();
        Assert.Equal(FuseRelayEnd.Stopped, (await _outcome.Task.WaitAsync(TimeSpan.FromSeconds(10), Token)).End);
        session.Stop(); // again, after the end: harmless
    }
}
