using System.Buffers;
using System.IO.Pipelines;

namespace Matchlock.Rpc;

/// <summary>
/// Lines from the client, each at most <see cref="MaxLine"/> bytes (contract/rpc.json
/// "max_line_bytes"). A longer line is reported once and skipped to its end, without ever
/// holding more than the limit in memory.
/// </summary>
internal sealed class LineReader(Stream input)
{
    public const int MaxLine = 10 * 1024 * 1024;

    private readonly PipeReader _reader = PipeReader.Create(input, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
    private bool _skipping;

    /// <summary>The next line (without its newline), <c>null</c> for a line over the limit, or end of input.</summary>
    public async ValueTask<(bool End, byte[]? Line)> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var newline = buffer.PositionOf((byte)'\n');
            if (newline is { } at)
            {
                var line = buffer.Slice(0, at);
                var tooLong = _skipping || line.Length > MaxLine;
                var bytes = tooLong ? null : line.ToArray();
                _reader.AdvanceTo(buffer.GetPosition(1, at));
                var wasSkipping = _skipping;
                _skipping = false;
                if (wasSkipping)
                {
                    continue; // the end of a line already reported
                }

                return (false, bytes);
            }

            if (buffer.Length > MaxLine)
            {
                // Over the limit with no end in sight: report it now, drop what we hold, and skip to the newline.
                _reader.AdvanceTo(buffer.End);
                if (!_skipping)
                {
                    _skipping = true;
                    return (false, null);
                }

                continue;
            }

            if (result.IsCompleted)
            {
                _reader.AdvanceTo(buffer.End);
                var last = buffer.Length > 0 && !_skipping ? buffer.ToArray() : null;
                return last is null ? (true, null) : (false, last);
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}
