using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Fuse;
using Microsoft.Extensions.Logging.Abstractions;

namespace Matchlock.Core.Tests.Vfs.Fuse;

/// <summary>The host end of a mount's relay: back-to-back requests in, whole replies out, many in flight.</summary>
public sealed class FuseRelayHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Lookup(ulong unique, string name)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name + "\0");
        var message = new byte[FuseConstants.InHeaderSize + nameBytes.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), (uint)FuseOpcode.Lookup);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), unique);
        BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(16), 1);
        nameBytes.CopyTo(message, FuseConstants.InHeaderSize);
        return message;
    }

    [Fact]
    public async Task Back_to_back_requests_each_get_one_whole_reply_and_the_end_of_input_ends_the_relay()
    {
        using var provider = new MemoryProvider();
        var requests = new Pipe();
        var replies = new Pipe();
        var serve = FuseRelayHost.ServeAsync(requests.Reader.AsStream(), replies.Writer.AsStream(), new FuseServer(provider), NullLogger.Instance, Ct);

        // 200 lookups written as one blob, split at arbitrary points: the relay frames by the headers.
        var blob = Enumerable.Range(1, 200).SelectMany(i => Lookup((ulong)i, $"missing-{i}")).ToArray();
        var writer = requests.Writer.AsStream();
        for (var at = 0; at < blob.Length; at += 777)
        {
            await writer.WriteAsync(blob.AsMemory(at, Math.Min(777, blob.Length - at)), Ct);
        }

        var seen = new HashSet<ulong>();
        var reader = replies.Reader.AsStream();
        var header = new byte[FuseConstants.OutHeaderSize];
        while (seen.Count < 200)
        {
            await reader.ReadExactlyAsync(header, Ct);
            Assert.Equal(16u, BinaryPrimitives.ReadUInt32LittleEndian(header)); // an error reply is the header alone
            Assert.Equal(-2, BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4))); // ENOENT
            Assert.True(seen.Add(BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8))));
        }

        await requests.Writer.CompleteAsync();
        await serve.WaitAsync(TimeSpan.FromSeconds(20), Ct);
    }

    [Fact]
    public async Task A_request_length_outside_the_limits_ends_the_relay_as_a_protocol_error()
    {
        using var provider = new MemoryProvider();
        var requests = new Pipe();
        var replies = new Pipe();
        var serve = FuseRelayHost.ServeAsync(requests.Reader.AsStream(), replies.Writer.AsStream(), new FuseServer(provider), NullLogger.Instance, Ct);
        var bogus = new byte[FuseConstants.InHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(bogus, 8);
        await requests.Writer.WriteAsync(bogus, Ct);
        await Assert.ThrowsAsync<FuseFormatException>(() => serve.WaitAsync(TimeSpan.FromSeconds(20), Ct));
    }
}
