using System.IO.Pipelines;
using System.Text;
using Matchlock.Guest.Agent;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Processes;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Tests;

/// <summary>
/// A host <see cref="MuxConnection"/> talking to a <see cref="GuestAgent"/> over in-memory pipes,
/// with the agent confined to a temporary root (no clock, hostname or cgroup changes).
/// </summary>
internal sealed class AgentHarness : IAsyncDisposable
{
    private readonly Pipe _hostToGuest = new();
    private readonly Pipe _guestToHost = new();
    private readonly MuxConnection _guest;

    internal AgentHarness()
    {
        Root = Directory.CreateTempSubdirectory("matchlock-agent-test-").FullName;
        Directory.CreateDirectory(Path.Combine(Root, "etc"));
        File.WriteAllText(Path.Combine(Root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
        File.WriteAllText(Path.Combine(Root, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
        Directory.CreateDirectory(Path.Combine(Root, "cgroup"));
        File.WriteAllText(Path.Combine(Root, "cgroup/cgroup.subtree_control"), "");
        Cgroups = CgroupLayout.Create(Path.Combine(Root, "cgroup"), 512L * 1024 * 1024, Environment.ProcessId);
        Agent = new GuestAgent(Reaper.Shared, new AgentOptions
        {
            Root = Root,
            CgroupRoot = Path.Combine(Root, "cgroup"),
            SetClock = false,
            SetHostname = false,
            ConfigureNetwork = false,
            ExecAsHelperPath = ProcessTestSupport.HelperPath,
        }, Cgroups);
        Host = new MuxConnection(_guestToHost.Reader.AsStream(), _hostToGuest.Writer.AsStream(), isHost: true);
        _guest = new MuxConnection(_hostToGuest.Reader.AsStream(), _guestToHost.Writer.AsStream(), isHost: false, Agent.HandleAsync);
        Host.Start();
        _guest.Start();
    }

    internal string Root { get; }

    internal GuestAgent Agent { get; }

    /// <summary>The layout on the temporary cgroup directory (plain files: nothing really moves).</summary>
    internal CgroupLayout Cgroups { get; }

    internal MuxConnection Host { get; }

    internal static CancellationToken Token => TestContext.Current.CancellationToken;

    internal async Task<MuxStream> OpenAsync(GuestRequest request) => await Host.OpenAsync(ProtocolSerializer.Serialize(request), Token);

    internal async Task<GuestReply> RequestAsync(GuestRequest request)
    {
        var stream = await OpenAsync(request);
        return ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
    }

    internal static async Task<string> ReadChannelAsync(MuxStream stream, byte channel)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await stream.ReadAsync(channel, chunk, Token)) > 0)
        {
            buffer.Write(chunk, 0, n);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Runs an exec to its end and returns the reply and both outputs.</summary>
    internal async Task<(GuestReply Reply, string Stdout, string Stderr)> ExecAsync(ExecRequest request, string? stdin = null)
    {
        var stream = await OpenAsync(request);
        var stdout = ReadChannelAsync(stream, StreamChannel.Stdout);
        var stderr = ReadChannelAsync(stream, StreamChannel.Stderr);
        if (stdin is not null)
        {
            await stream.WriteAsync(StreamChannel.Stdin, Encoding.UTF8.GetBytes(stdin), Token);
            await stream.WriteEofAsync(StreamChannel.Stdin, Token);
        }

        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        return (reply, await stdout, await stderr);
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await _guest.DisposeAsync();
        Cgroups.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}
