using System.IO.Pipelines;
using System.Text;
using Matchlock.Core.Owner;
using Matchlock.Core.Sandboxes;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Tests.Owner;

/// <summary>
/// The owner's exec path without a VM: a client connection (as <c>matchlock exec</c> has) to the
/// owner's answer-and-relay code, which talks to a scripted guest over a second in-memory link.
/// Proves that whatever the guest does to one exec's stream, the client gets an answer naming
/// it, and the owner goes on serving other execs (issue 11, part 5).
/// </summary>
public sealed class OwnerExecRelayTests : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly Link _guestLink;
    private readonly Link _clientLink;

    public OwnerExecRelayTests()
    {
        // The guest: behaviour picked by argv[0].
        _guestLink = new Link(GuestAsync);
        // The owner serves the client: every request is an exec relayed to the guest.
        _clientLink = new Link(stream => ControlServer.AnswerAsync(stream, async request =>
        {
            var spec = ExecSpec.FromRequest(request.Exec!);
            var guestStream = await _guestLink.Host.OpenAsync(ProtocolSerializer.Serialize(spec.ToRequest(spec.Env)), CancellationToken.None);
            await using var session = new ExecSession(guestStream, spec);
            return await ControlServer.RunExecAsync(stream, spec, session);
        }));
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task GuestAsync(MuxStream stream)
    {
        var argv = ((ExecRequest)ProtocolSerializer.ReadRequest(stream.Request)).Argv;
        switch (argv[0])
        {
            case "reset":
                await stream.WriteAsync(StreamChannel.Stdout, "partial"u8.ToArray(), CancellationToken.None);
                await stream.ResetAsync("exec handler crashed", CancellationToken.None);
                return;
            case "garbage":
                await stream.SendReplyAsync("{not json"u8.ToArray(), CancellationToken.None);
                return;
            case "until-cancelled":
                // Echoes the cancel's grace and ends as a SIGTERM'd command would, with its duration.
                await foreach (var raw in stream.Controls.ReadAllAsync())
                {
                    if (ProtocolSerializer.ReadControl(raw) is CancelControl cancel)
                    {
                        await stream.WriteAsync(StreamChannel.Stdout, Encoding.UTF8.GetBytes($"grace={cancel.GraceMs}"), CancellationToken.None);
                        await stream.SendReplyAsync(
                            ProtocolSerializer.Serialize(new GuestReply { ExitCode = 143, Signal = 15, DurationMs = 1234 }),
                            new[] { StreamChannel.Stdout, StreamChannel.Stderr },
                            CancellationToken.None);
                        return;
                    }
                }

                return;
            case "hang":
                await Task.Delay(Timeout.Infinite, CancellationToken.None);
                return;
            default:
                await stream.WriteAsync(StreamChannel.Stdout, Encoding.UTF8.GetBytes(argv[0]), CancellationToken.None);
                await stream.SendReplyAsync(ProtocolSerializer.Serialize(new GuestReply { ExitCode = 0 }), new[] { StreamChannel.Stdout, StreamChannel.Stderr }, CancellationToken.None);
                return;
        }
    }

    private async Task<RemoteExec> StartAsync(string command)
    {
        // The control socket's exec carries the guest protocol's own ExecRequest.
        var request = new ControlRequest { Op = ControlRequest.ExecOp, Exec = new ExecSpec { Argv = [command] }.ToRequest([]) };
        var stream = await _clientLink.Host.OpenAsync(Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(request, OwnerJsonContext.Default.ControlRequest)), Ct);
        return new RemoteExec(stream, stdin: false);
    }

    [Fact]
    public async Task A_cancel_from_the_client_reaches_the_guest_and_the_status_and_duration_come_back()
    {
        IExecSession exec = await StartAsync("until-cancelled");
        await using (exec)
        {
            var output = new StreamReader(exec.Stdout).ReadToEndAsync(Ct);
            await exec.CancelAsync(TimeSpan.FromMilliseconds(1500), Ct);
            var result = await exec.WaitAsync(Ct).WaitAsync(Bound, Ct);
            Assert.Equal("grace=1500", await output.WaitAsync(Bound, Ct));
            Assert.Equal(new ExecResult(143, 15, TimeSpan.FromMilliseconds(1234)), result);
        }
    }

    [Fact]
    public void The_exec_request_on_the_control_socket_is_the_guest_protocols_own()
    {
        var spec = new ExecSpec { Argv = ["sh", "-c", "x"], Env = ["A=1"], WorkingDir = "/w", User = "nobody", Tty = true, Rows = 50, Cols = 132, Stdin = true, KillGrace = TimeSpan.FromSeconds(3) };
        var json = System.Text.Json.JsonSerializer.Serialize(new ControlRequest { Op = ControlRequest.ExecOp, Exec = spec.ToRequest(spec.Env) }, OwnerJsonContext.Default.ControlRequest);
        var parsed = OwnerJsonContext.ReadRequest(Encoding.UTF8.GetBytes(json));
        Assert.Equal("exec", parsed.Op);
        Assert.Equal(spec with { Argv = spec.Argv, Env = spec.Env }, ExecSpec.FromRequest(parsed.Exec!) with { Argv = spec.Argv, Env = spec.Env });
        Assert.Equal(spec.Argv, parsed.Exec!.Argv);
        Assert.Equal(spec.Env, parsed.Exec.Env);
        Assert.Contains("\"exec\":{\"argv\":[\"sh\",\"-c\",\"x\"]", json, StringComparison.Ordinal);

        // An exec without a command is refused by parsing, not run.
        Assert.Throws<OwnerProtocolException>(() => OwnerJsonContext.ReadRequest("{\"op\":\"exec\",\"exec\":{\"tty\":true}}"u8.ToArray()));
    }

    private static async Task<(string Out, Task<ExecResult> Result)> RunAsync(RemoteExec exec)
    {
        var output = new StreamReader(exec.Stdout).ReadToEndAsync(Ct);
        var result = exec.WaitAsync(Ct);
        return (await output.WaitAsync(Bound, Ct), result);
    }

    [Fact]
    public async Task A_guest_that_resets_the_exec_stream_gets_the_client_an_error_naming_it_and_other_execs_still_run()
    {
        await using var broken = await StartAsync("reset");
        var (_, result) = await RunAsync(broken);
        var ex = await Assert.ThrowsAsync<OwnerOperationException>(() => result.WaitAsync(Bound, Ct));
        Assert.Contains("reset", ex.Message, StringComparison.Ordinal);
        Assert.Contains("exec handler crashed", ex.Message, StringComparison.Ordinal);

        await using var next = await StartAsync("hello");
        var (output, status) = await RunAsync(next);
        Assert.Equal("hello", output);
        Assert.Equal(0, (await status.WaitAsync(Bound, Ct)).ExitCode);
    }

    [Fact]
    public async Task A_malformed_reply_from_the_guest_ends_that_exec_with_an_error()
    {
        await using var exec = await StartAsync("garbage");
        var (_, result) = await RunAsync(exec);
        var ex = await Assert.ThrowsAsync<OwnerOperationException>(() => result.WaitAsync(Bound, Ct));
        Assert.Contains("not valid", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_guest_link_that_fails_ends_running_execs_with_an_error()
    {
        await using var exec = await StartAsync("hang");
        var result = exec.WaitAsync(Ct);
        await Task.Delay(100, Ct); // deliberate: a window in which the exec must NOT end (no condition to wait for)
        Assert.False(result.IsCompleted);

        await _guestLink.BreakAsync();

        var ex = await Assert.ThrowsAsync<OwnerOperationException>(() => result.WaitAsync(Bound, Ct));
        Assert.Contains("sandbox stopped", ex.Message, StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        await _clientLink.DisposeAsync();
        await _guestLink.DisposeAsync();
    }

    /// <summary>Two <see cref="MuxConnection"/>s joined by in-memory pipes; the "guest" end serves with the handler.</summary>
    private sealed class Link : IAsyncDisposable
    {
        private readonly Pipe _toServer = new();
        private readonly Pipe _toHost = new();
        private readonly MuxConnection _server;

        public Link(Func<MuxStream, Task> serve)
        {
            Host = new MuxConnection(_toHost.Reader.AsStream(), _toServer.Writer.AsStream(), isHost: true);
            _server = new MuxConnection(_toServer.Reader.AsStream(), _toHost.Writer.AsStream(), isHost: false, serve);
            Host.Start();
            _server.Start();
        }

        public MuxConnection Host { get; }

        public async Task BreakAsync()
        {
            await _toHost.Writer.CompleteAsync();
            await _toServer.Writer.CompleteAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await _server.DisposeAsync();
        }
    }
}
