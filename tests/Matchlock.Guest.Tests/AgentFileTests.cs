using System.Text;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;
using static Matchlock.Guest.Tests.AgentHarness;

namespace Matchlock.Guest.Tests;

/// <summary>write_file, read_file, list_files, shutdown and malformed requests over the protocol.</summary>
public sealed class AgentFileTests
{
    [Fact]
    public async Task Write_then_read_round_trips_content_and_mode()
    {
        await using var harness = new AgentHarness();
        var path = Path.Combine(harness.Root, "new/dir/file.txt");
        var content = string.Concat(Enumerable.Repeat("0123456789", 50_000));

        var write = await harness.OpenAsync(new WriteFileRequest { Path = path, Mode = 0x1C0 /* 0700 */ });
        await write.WriteAsync(StreamChannel.Stdin, Encoding.ASCII.GetBytes(content), Token);
        await write.WriteEofAsync(StreamChannel.Stdin, Token);
        var written = ProtocolSerializer.ReadReply(await write.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.True(written.Ok, written.Error);
        Assert.Equal(content.Length, written.Size);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(path));

        var read = await harness.OpenAsync(new ReadFileRequest { Path = path });
        var data = await ReadChannelAsync(read, StreamChannel.Stdout);
        var reply = ProtocolSerializer.ReadReply(await read.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal((content.Length, content), (reply.Size, data));
    }

    [Fact]
    public async Task Read_errors_are_replies_with_errno_codes()
    {
        await using var harness = new AgentHarness();
        var missing = await harness.RequestAsync(new ReadFileRequest { Path = Path.Combine(harness.Root, "missing", "file") });
        Assert.Equal("ENOENT", missing.ErrorCode);
        // In words, never a runtime resource key (the NativeAOT guest has none: "IO_PathNotFound_Path").
        Assert.EndsWith("missing/file: no such file or directory", missing.Error, StringComparison.Ordinal);
        Assert.Equal("EISDIR", (await harness.RequestAsync(new ReadFileRequest { Path = harness.Root })).ErrorCode);
        Assert.Equal("EINVAL", (await harness.RequestAsync(new ReadFileRequest { Path = "relative/path" })).ErrorCode);
        File.WriteAllText(Path.Combine(harness.Root, "big"), new string('x', 100));
        Assert.Equal("EFBIG", (await harness.RequestAsync(new ReadFileRequest { Path = Path.Combine(harness.Root, "big"), MaxBytes = 10 })).ErrorCode);
    }

    [Fact]
    public async Task List_files_describes_entries_in_name_order()
    {
        await using var harness = new AgentHarness();
        File.WriteAllText(Path.Combine(harness.Root, "b.txt"), "12345");
        Directory.CreateDirectory(Path.Combine(harness.Root, "a-dir"));
        var reply = await harness.RequestAsync(new ListFilesRequest { Path = harness.Root });
        Assert.True(reply.Ok, reply.Error);
        var names = reply.Files!.Select(f => f.Name).ToArray();
        Assert.Equal(["a-dir", "b.txt", "cgroup", "etc"], names);
        var file = reply.Files!.Single(f => f.Name == "b.txt");
        Assert.Equal((5L, false), (file.Size, file.IsDir));
        Assert.True(reply.Files!.Single(f => f.Name == "a-dir").IsDir);
        Assert.Equal("ENOTDIR", (await harness.RequestAsync(new ListFilesRequest { Path = Path.Combine(harness.Root, "b.txt") })).ErrorCode);
    }

    [Fact]
    public async Task Shutdown_replies_first_then_signals_the_init()
    {
        await using var harness = new AgentHarness();
        var reply = await harness.RequestAsync(new ShutdownRequest { GraceMs = 1234 });
        Assert.True(reply.Ok);
        Assert.Equal(TimeSpan.FromMilliseconds(1234), await harness.Agent.ShutdownRequested.WaitAsync(ProcessTestSupport.TestTimeout, Token));
    }

    [Fact]
    public async Task A_malformed_request_gets_an_error_reply_not_a_hang()
    {
        await using var harness = new AgentHarness();
        var stream = await harness.Host.OpenAsync("{\"op\":\"format_disk\"}"u8.ToArray(), Token);
        var reply = ProtocolSerializer.ReadReply(await stream.Reply.WaitAsync(ProcessTestSupport.TestTimeout, Token));
        Assert.Equal("EPROTO", reply.ErrorCode);
    }
}
