using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

public sealed partial class Sandbox
{
    /// <summary>Writes a file in the guest (parents created 0755); mode 0 means 0644.</summary>
    public async Task WriteFileAsync(string path, Stream content, int mode, CancellationToken cancellationToken)
    {
        await using var stream = await OpenAsync(new WriteFileRequest { Path = path, Mode = mode }, cancellationToken);
        await using (var body = stream.GetWriteStream(StreamChannel.Stdin))
        {
            await content.CopyToAsync(body, 64 * 1024, cancellationToken);
        }

        var reply = await GuestReplies.WaitAsync(stream, $"write_file {path}", bound: null, cancellationToken);
        if (!reply.Ok)
        {
            throw new GuestOperationException($"write_file {path}: {reply.Error}", reply.ErrorCode);
        }
    }

    /// <summary>Copies a regular file of the guest into <paramref name="destination"/>.</summary>
    public async Task<long> ReadFileAsync(string path, Stream destination, CancellationToken cancellationToken, long maxBytes = 16 * 1024 * 1024)
    {
        await using var stream = await OpenAsync(new ReadFileRequest { Path = path, MaxBytes = maxBytes }, cancellationToken);
        await stream.GetReadStream(StreamChannel.Stdout).CopyToAsync(destination, cancellationToken);
        var reply = await GuestReplies.WaitAsync(stream, $"read_file {path}", bound: null, cancellationToken);
        return reply.Ok ? reply.Size ?? 0 : throw new GuestOperationException($"read_file {path}: {reply.Error}", reply.ErrorCode);
    }

    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path, CancellationToken cancellationToken)
    {
        var reply = await RequestAsync(new ListFilesRequest { Path = path }, cancellationToken);
        return reply.Files ?? [];
    }
}
