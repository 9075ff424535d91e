using System.Net;
using System.Text.Json;
using Matchlock.Core.PortForwarding;

namespace Matchlock.Rpc.Methods;

/// <summary>
/// <c>port_forward</c>: listens on host ports and relays each connection to a guest port. Each
/// call replaces the previous set (the old listeners close first, so a port can be kept).
/// </summary>
internal sealed class PortMethods : IAsyncDisposable
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private PortForwarder? _current;

    public async Task<Action<Utf8JsonWriter>> ForwardAsync(IRpcSandbox sandbox, RpcCall call)
    {
        var mappings = new List<PortMapping>();
        foreach (var forward in call.Params.ObjectArray("forwards"))
        {
            var local = forward.OptionalInt32("local_port", 0, 65535) ?? throw RpcException.InvalidParams("forwards[].local_port is required: 0-65535 (0 picks a free port)");
            var remote = forward.OptionalInt32("remote_port", 1, 65535) ?? throw RpcException.InvalidParams("forwards[].remote_port is required: 1-65535");
            mappings.Add(new PortMapping(local, remote));
        }

        if (!call.Params.Has("forwards"))
        {
            throw RpcException.InvalidParams("params.forwards is required: expected [{local_port, remote_port}]");
        }

        var addresses = call.Params.OptionalStringArray("addresses")?.Select(a => IPAddress.TryParse(a, out var ip)
            ? ip
            : throw RpcException.InvalidParams($"params.addresses: \"{a}\" is not an IP address")).ToList();

        await _lock.WaitAsync(call.Cancelled);
        try
        {
            if (_current is not null)
            {
                await _current.DisposeAsync();
                _current = null;
            }

            if (mappings.Count == 0)
            {
                return w =>
                {
                    w.WriteStartArray("bindings");
                    w.WriteEndArray();
                };
            }

            _current = sandbox.ForwardPorts(mappings, addresses is { Count: > 0 } ? addresses : null);
            var bindings = _current.Bindings;
            return w =>
            {
                w.WriteStartArray("bindings");
                foreach (var b in bindings)
                {
                    w.WriteStartObject();
                    w.WriteString("address", b.Address.ToString());
                    w.WriteNumber("local_port", b.LocalPort);
                    w.WriteNumber("remote_port", b.RemotePort);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            };
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _lock.WaitAsync();
        try
        {
            if (_current is not null)
            {
                await _current.DisposeAsync();
                _current = null;
            }
        }
        finally
        {
            _lock.Release();
        }
    }
}
