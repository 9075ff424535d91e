using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using Matchlock.Sdk.Internal;

namespace Matchlock.Sdk;

public sealed partial class Sandbox
{
    /// <summary>
    /// Forwards host ports to guest ports, replacing any earlier set. Binds
    /// <paramref name="addresses"/> (default 127.0.0.1).
    /// </summary>
    /// <exception cref="MatchlockSandboxException">A port could not be bound.</exception>
    public async Task<IReadOnlyList<PortBinding>> PortForwardAsync(IReadOnlyList<PortForward> forwards, IReadOnlyList<string>? addresses = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(forwards);
        foreach (var forward in forwards)
        {
            Wire.ValidateForward(forward);
        }

        var result = await _rpc.CallAsync(
            "port_forward",
            w =>
            {
                w.WriteStartArray("forwards");
                foreach (var forward in forwards)
                {
                    w.WriteStartObject();
                    w.WriteNumber("local_port", forward.LocalPort);
                    w.WriteNumber("remote_port", forward.RemotePort);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                if (addresses is { Count: > 0 })
                {
                    Wire.WriteStrings(w, "addresses", addresses);
                }
            },
            cancellationToken);
        return Wire.Required(result, "port_forward", "bindings").EnumerateArray()
            .Select(b => new PortBinding(
                Wire.Required(b, "port_forward", "address").GetString() ?? "",
                Wire.Required(b, "port_forward", "local_port").GetInt32(),
                Wire.Required(b, "port_forward", "remote_port").GetInt32()))
            .ToArray();
    }

    /// <summary>Forwards <c>[LOCAL:]REMOTE</c> specs (e.g. <c>"8080:80"</c>), replacing any earlier set.</summary>
    public Task<IReadOnlyList<PortBinding>> PortForwardAsync(IEnumerable<string> specs, CancellationToken cancellationToken = default) =>
        PortForwardAsync(specs.Select(PortForward.Parse).ToArray(), null, cancellationToken);

    /// <summary>Adds hosts (globs allowed) to the allow-list of a sandbox with interception on.</summary>
    public async Task<AllowListChange> AllowListAddAsync(IReadOnlyList<string> hosts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        var result = await _rpc.CallAsync("allow_list_add", w => Wire.WriteStrings(w, "hosts", hosts), cancellationToken);
        return new AllowListChange(Wire.Strings(result, "allow_list_add", "added"), Wire.Strings(result, "allow_list_add", "allowed_hosts"));
    }

    /// <summary>Removes hosts from the allow-list.</summary>
    public async Task<AllowListChange> AllowListDeleteAsync(IReadOnlyList<string> hosts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        var result = await _rpc.CallAsync("allow_list_delete", w => Wire.WriteStrings(w, "hosts", hosts), cancellationToken);
        return new AllowListChange(Wire.Strings(result, "allow_list_delete", "removed"), Wire.Strings(result, "allow_list_delete", "allowed_hosts"));
    }

    /// <summary>The sandbox's log so far: the output of the entrypoint <see cref="MatchlockClient.LaunchAsync(SandboxOptions, CancellationToken)"/> started.</summary>
    public async Task<byte[]> GetLogAsync(CancellationToken cancellationToken = default)
    {
        var result = await _rpc.CallAsync("log", null, cancellationToken);
        var content = Wire.Required(result, "log", "content");

        // The contract says base64 (as the original sends it); text that is not base64 is taken as it is.
        return content.TryGetBytesFromBase64(out var bytes) ? bytes : Encoding.UTF8.GetBytes(content.GetString() ?? "");
    }

    /// <summary>The log as UTF-8 text.</summary>
    public async Task<string> GetLogTextAsync(CancellationToken cancellationToken = default) =>
        Encoding.UTF8.GetString(await GetLogAsync(cancellationToken));

    /// <summary>
    /// The log from its start, then whatever is appended, until the sandbox stops or the
    /// enumeration ends (which cancels the stream on the server).
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> StreamLogAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var chunks = Channel.CreateUnbounded<ReadOnlyMemory<byte>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var call = await _rpc.StartAsync(
            "log_stream",
            null,
            (method, p) =>
            {
                if (method == "log_stream.data" && p.TryGetProperty("data", out var data) && data.TryGetBytesFromBase64(out var bytes))
                {
                    chunks.Writer.TryWrite(bytes);
                }
            },
            cancellationToken);
        _ = call.Result.ContinueWith(
            // -32003 here means the server stopped the stream (the sandbox is closing): a normal end.
            done => chunks.Writer.TryComplete(done.Exception?.InnerException is { } error and not OperationCanceledException ? error : null),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

        var finished = false;
        try
        {
            await foreach (var chunk in chunks.Reader.ReadAllAsync(cancellationToken))
            {
                yield return chunk;
            }

            finished = true;
        }
        finally
        {
            if (!finished)
            {
                await _rpc.CancelAsync(call);
            }
        }
    }
}
