using System.Diagnostics;
using System.Globalization;
using System.Text;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using static Matchlock.Guest.Tests.AgentHarness;
using Matchlock.Tests;

namespace Matchlock.Guest.Tests;

/// <summary>The exec request end to end over the real protocol, against real processes on the host.</summary>
public sealed class AgentExecTests
{
    [Fact]
    public async Task Exec_streams_stdout_and_stderr_then_replies_with_the_exit_code()
    {
        await using var harness = new AgentHarness();
        var (reply, stdout, stderr) = await harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo out; echo err >&2; exit 3"] });
        Assert.Equal(("out\n", "err\n", 3, (int?)null), (stdout, stderr, reply.ExitCode, reply.Signal));
        Assert.True(reply.Ok);
        Assert.NotNull(reply.DurationMs);
    }

    [Fact]
    public async Task Stdin_is_delivered_and_its_eof_closes_the_pipe()
    {
        await using var harness = new AgentHarness();
        var (reply, stdout, _) = await harness.ExecAsync(new ExecRequest { Argv = ["tr", "a-z", "A-Z"], Stdin = true }, "hello\n");
        Assert.Equal(("HELLO\n", 0), (stdout, reply.ExitCode));
    }

    [Fact]
    public async Task Large_output_is_flow_controlled_and_complete()
    {
        await using var harness = new AgentHarness();
        var (reply, stdout, _) = await harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"] });
        Assert.Equal((3_000_000, 0), (stdout.Length, reply.ExitCode));
    }

    [Fact]
    public async Task A_missing_command_is_127_with_the_message_on_stderr()
    {
        await using var harness = new AgentHarness();
        var (reply, stdout, stderr) = await harness.ExecAsync(new ExecRequest { Argv = ["no-such-command-anywhere"] });
        Assert.Equal(("", "exec: no-such-command-anywhere: not found\n"), (stdout, stderr));
        Assert.Equal((127, "ENOENT"), (reply.ExitCode, reply.ErrorCode));
    }

    [Fact]
    public async Task Pty_exec_has_a_terminal_that_can_be_resized()
    {
        await using var harness = new AgentHarness();
        var stream = await harness.OpenAsync(new ExecRequest { Argv = ["sh", "-c", "stty -echo; stty size; read x; stty size; echo $TERM"], Tty = true, Rows = 20, Cols = 70, Stdin = true });
        var first = new StringBuilder();
        var buffer = new byte[64];
        while (!first.ToString().Contains('\n', StringComparison.Ordinal))
        {
            var n = await stream.ReadAsync(StreamChannel.Stdout, buffer, Token);
            Assert.True(n > 0, "output ended early");
            first.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        // No head start: a resize sent before input is in effect when the command reads that input.
        await stream.SendControlAsync(ProtocolSerializer.Serialize(new ResizeControl(40, 120)), Token);
        await stream.WriteAsync(StreamChannel.Stdin, "go\n"u8.ToArray(), Token);
        var rest = await ReadChannelAsync(stream, StreamChannel.Stdout);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal("20 70\r\n40 120\r\nxterm\r\n", first + rest);
        Assert.Equal(0, reply.ExitCode);
    }

    [Fact]
    public async Task Resizes_and_input_take_effect_in_the_order_they_were_sent()
    {
        await using var harness = new AgentHarness();
        const int Rounds = 12;
        var stream = await harness.OpenAsync(new ExecRequest
        {
            Argv = ["sh", "-c", $"stty -echo; echo ready; i=0; while [ $i -lt {Rounds} ]; do read x; stty size; i=$((i+1)); done"],
            Tty = true,
            Stdin = true,
        });
        // Each round: the shell waits in read; a resize and the line that wakes it are sent back
        // to back; it must print the new size. (Before the pump applied controls in order with
        // the input, the line could reach the terminal before the resize.)
        var output = new StringBuilder();
        var buffer = new byte[256];

        // Input sent before `stty -echo` ran would be echoed: start once the shell says so.
        while (!output.ToString().Contains('\n', StringComparison.Ordinal))
        {
            var n = await stream.ReadAsync(StreamChannel.Stdout, buffer, Token).AsTask().WaitAsync(ProcessTestSupport.TestTimeout, Token);
            Assert.True(n > 0, "output ended early: " + output);
            output.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }

        Assert.Equal("ready\r\n", output.ToString());
        output.Clear();
        for (var i = 1; i <= Rounds; i++)
        {
            await stream.SendControlAsync(ProtocolSerializer.Serialize(new ResizeControl(10 + i, 100 + i)), Token);
            await stream.WriteAsync(StreamChannel.Stdin, "x\n"u8.ToArray(), Token);
            while (output.ToString().Split('\n').Length <= i)
            {
                var n = await stream.ReadAsync(StreamChannel.Stdout, buffer, Token).AsTask().WaitAsync(ProcessTestSupport.TestTimeout, Token);
                Assert.True(n > 0, "output ended early: " + output);
                output.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }

        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal(0, reply.ExitCode);
        Assert.Equal(string.Concat(Enumerable.Range(1, Rounds).Select(i => $"{10 + i} {100 + i}\r\n")), output.ToString());
    }

    [Fact]
    public async Task Signal_control_reaches_the_process_group_and_is_reported()
    {
        await using var harness = new AgentHarness();
        var stream = await harness.OpenAsync(new ExecRequest { Argv = ["sleep", "100"] });
        await Eventually.Until(() => ProcessTestSupport.ChildrenRunning("sleep", "100"), ProcessTestSupport.TestTimeout, "sleep 100 to run");
        await stream.SendControlAsync(ProtocolSerializer.Serialize(new SignalControl(9)), Token);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal((137, 9), (reply.ExitCode, reply.Signal));
    }

    [Fact]
    public async Task Cancel_sends_sigterm_then_sigkill_after_the_grace()
    {
        await using var harness = new AgentHarness();
        var stream = await harness.OpenAsync(new ExecRequest { Argv = ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"] });
        var buffer = new byte[6];
        await stream.ReadAsync(StreamChannel.Stdout, buffer, Token);
        var watch = Stopwatch.StartNew();
        await stream.SendControlAsync(ProtocolSerializer.Serialize(new CancelControl(300)), Token);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal(9, reply.Signal);
        Assert.InRange(watch.ElapsedMilliseconds, 250, 5000);
    }

    [Fact]
    public async Task A_host_reset_kills_the_command()
    {
        await using var harness = new AgentHarness();
        var stream = await harness.OpenAsync(new ExecRequest { Argv = ["sh", "-c", "echo $$; exec sleep 100"] });
        var line = new byte[32];
        var n = await stream.ReadAsync(StreamChannel.Stdout, line, Token);
        var pid = int.Parse(Encoding.ASCII.GetString(line, 0, n).Trim(), CultureInfo.InvariantCulture);
        await stream.ResetAsync("client went away", Token);
        await Eventually.Until(() => ProcessTestSupport.IsDead(pid), ProcessTestSupport.TestTimeout, "the command to die after the reset");
    }

    [Fact]
    public async Task A_background_process_holding_stdout_does_not_hang_the_exec()
    {
        await using var harness = new AgentHarness();
        var watch = Stopwatch.StartNew();
        var (reply, stdout, _) = await harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "sleep 30 & echo $!"] });
        Assert.Equal(0, reply.ExitCode);
        Assert.InRange(watch.ElapsedMilliseconds, 0, 5000);
        _ = Interop.Libc.kill(int.Parse(stdout.Trim(), CultureInfo.InvariantCulture), 9);
    }

    [Fact]
    public async Task Configure_writes_host_files_and_sets_hostname_for_execs()
    {
        await using var harness = new AgentHarness();
        var reply = await harness.RequestAsync(new ConfigureRequest
        {
            Hostname = "sandbox-7",
            Hosts = [new HostEntry("db", "10.1.2.3")],
            DnsServers = ["10.0.0.53"],
            CpuMax = "50000 100000",
        });
        Assert.True(reply.Ok, reply.Error);
        Assert.Contains("10.1.2.3 db", File.ReadAllText(Path.Combine(harness.Root, "etc/hosts")), StringComparison.Ordinal);
        Assert.Equal("nameserver 10.0.0.53\n", File.ReadAllText(Path.Combine(harness.Root, "etc/resolv.conf")));
        Assert.Equal("50000 100000", File.ReadAllText(Path.Combine(harness.Root, "cgroup/sandbox/cpu.max")));
        var (_, stdout, _) = await harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", "echo $HOSTNAME"] });
        Assert.Equal("sandbox-7\n", stdout);
    }

    [Fact]
    public async Task Configure_reports_bad_values_without_applying_them()
    {
        await using var harness = new AgentHarness();
        var reply = await harness.RequestAsync(new ConfigureRequest { Hostname = "bad name", CpuMax = "lots" });
        Assert.False(reply.Ok);
        Assert.Equal("ECONFIG", reply.ErrorCode);
        Assert.Contains("hostname", reply.Error, StringComparison.Ordinal);
        Assert.Contains("cpu.max", reply.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Many_execs_run_concurrently_on_one_link()
    {
        await using var harness = new AgentHarness();
        var runs = Enumerable.Range(0, 20).Select(i => harness.ExecAsync(new ExecRequest { Argv = ["sh", "-c", $"sleep 0.2; echo {i}"] })).ToArray();
        var watch = Stopwatch.StartNew();
        var results = await Task.WhenAll(runs);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"{i}\n"), results.Select(r => r.Stdout));
        Assert.InRange(watch.ElapsedMilliseconds, 0, 3000); // not 20 × 0.2 s in series
    }
}
