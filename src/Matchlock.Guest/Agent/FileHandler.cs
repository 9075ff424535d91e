using Matchlock.Guest.Interop;
using Matchlock.Protocol;
using Matchlock.Protocol.Framing;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// write_file, read_file and list_files on the guest's filesystem (as root: these are the host's
/// own operations, not the user's). Paths must be absolute; errors come back as replies with an
/// errno-style code, never as a reset.
/// </summary>
internal static class FileHandler
{
    private const int DefaultFileMode = 0x1A4; // 0644

    internal static async Task<GuestReply> WriteAsync(MuxStream stream, WriteFileRequest request, CancellationToken cancellationToken)
    {
        if (!Path.IsPathFullyQualified(request.Path))
        {
            return GuestReply.Failure($"write_file: {request.Path}: path must be absolute", "EINVAL");
        }

        var mode = (UnixFileMode)(request.Mode is > 0 and <= 0xFFF ? request.Mode : DefaultFileMode);
        long written = 0;
        try
        {
            if (Path.GetDirectoryName(request.Path) is { Length: > 0 } parent)
            {
                // 0777 minus our umask (022): 0755 parents.
                Directory.CreateDirectory(parent);
            }

            await using (var file = new FileStream(request.Path, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                UnixCreateMode = mode,
                BufferSize = 0,
            }))
            {
                var buffer = new byte[64 * 1024];
                int n;
                while ((n = await stream.ReadAsync(StreamChannel.Stdin, buffer, cancellationToken)) > 0)
                {
                    await file.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                    written += n;
                }
            }

            // UnixCreateMode applies only to new files and goes through the umask; set it exactly.
            File.SetUnixFileMode(request.Path, mode);
            return new GuestReply { Size = written };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return GuestReply.Failure($"write_file: {request.Path}: {ErrorCodes.Describe(e)}", ErrorCodes.FromException(e));
        }
    }

    internal static async Task<GuestReply> ReadAsync(MuxStream stream, ReadFileRequest request, CancellationToken cancellationToken)
    {
        if (!Path.IsPathFullyQualified(request.Path))
        {
            return GuestReply.Failure($"read_file: {request.Path}: path must be absolute", "EINVAL");
        }

        FileStream file;
        try
        {
            if (Directory.Exists(request.Path))
            {
                return GuestReply.Failure($"read_file: {request.Path}: is a directory", "EISDIR");
            }

            file = new FileStream(request.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return GuestReply.Failure($"read_file: {request.Path}: {ErrorCodes.Describe(e)}", ErrorCodes.FromException(e));
        }

        await using (file)
        {
            if (file.CanSeek && file.Length > request.MaxBytes)
            {
                return GuestReply.Failure($"read_file: {request.Path}: {file.Length} bytes is more than the limit of {request.MaxBytes}", "EFBIG");
            }

            long sent = 0;
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await file.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (sent + n > request.MaxBytes)
                {
                    // Grew while we read it (or a /proc file without a size).
                    return GuestReply.Failure($"read_file: {request.Path}: more than the limit of {request.MaxBytes} bytes", "EFBIG");
                }

                await stream.WriteAsync(StreamChannel.Stdout, buffer.AsMemory(0, n), cancellationToken);
                sent += n;
            }

            await stream.WriteEofAsync(StreamChannel.Stdout, cancellationToken);
            return new GuestReply { Size = sent };
        }
    }

    internal static GuestReply List(ListFilesRequest request)
    {
        if (!Path.IsPathFullyQualified(request.Path))
        {
            return GuestReply.Failure($"list_files: {request.Path}: path must be absolute", "EINVAL");
        }

        try
        {
            var directory = new DirectoryInfo(request.Path);
            if (!directory.Exists)
            {
                return File.Exists(request.Path)
                    ? GuestReply.Failure($"list_files: {request.Path}: not a directory", "ENOTDIR")
                    : GuestReply.Failure($"list_files: {request.Path}: no such file or directory", "ENOENT");
            }

            var entries = directory.EnumerateFileSystemInfos()
                .OrderBy(e => e.Name, StringComparer.Ordinal)
                .Select(e => new FileEntry(
                    e.Name,
                    e is FileInfo f ? f.Length : 0,
                    (int)e.UnixFileMode,
                    new DateTimeOffset(e.LastWriteTimeUtc).ToUnixTimeSeconds(),
                    e is DirectoryInfo))
                .ToArray();
            return new GuestReply { Files = entries };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NativeCallException)
        {
            return GuestReply.Failure($"list_files: {request.Path}: {ErrorCodes.Describe(e)}", ErrorCodes.FromException(e));
        }
    }
}
