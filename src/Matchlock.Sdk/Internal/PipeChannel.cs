using System.IO.Pipelines;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// A server running in this process over two in-memory pipes: the in-process transport
/// (<c>RpcServer.RunAsync</c>) and the tests' fake servers use it, so everything above the
/// channel is the same code the child process transport runs.
/// </summary>
internal sealed class PipeChannel : IRpcChannel
{
    private readonly Pipe _toServer = new();
    private readonly Pipe _fromServer = new();
    private readonly CancellationTokenSource _stop = new();
    private string _diagnostics = "";

    public PipeChannel(Func<Stream, Stream, CancellationToken, Task> serve)
    {
        Input = _toServer.Writer.AsStream();
        Exited = Task.Run(() => RunAsync(serve));
    }

    public PipeReader Output => _fromServer.Reader;

    public Stream Input { get; }

    public Task Exited { get; }

    public string Diagnostics => Volatile.Read(ref _diagnostics);

    public async ValueTask CloseInputAsync() => await _toServer.Writer.CompleteAsync();

    public async ValueTask KillAsync()
    {
        await _stop.CancelAsync();
        await Exited;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _stop.Dispose();
    }

    private async Task RunAsync(Func<Stream, Stream, CancellationToken, Task> serve)
    {
        var input = _toServer.Reader.AsStream();
        var output = _fromServer.Writer.AsStream();
        try
        {
            await serve(input, output, _stop.Token);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Killed.
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The server's own failure: the client sees the end of its output and reports this text.
            Volatile.Write(ref _diagnostics, $"the in-process server failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            await _fromServer.Writer.CompleteAsync();
            await _toServer.Reader.CompleteAsync();
        }
    }
}
