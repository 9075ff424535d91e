using System.Text.Json;
using Matchlock.Core.Network.Proxy;

namespace Matchlock.Rpc.Methods;

/// <summary><c>allow_list_add</c> / <c>allow_list_delete</c>.</summary>
internal static class NetworkMethods
{
    public static Action<Utf8JsonWriter> ChangeAllowList(IRpcSandbox sandbox, RpcCall call, bool add)
    {
        var hosts = call.Params.OptionalStringArray("hosts") ?? throw RpcException.InvalidParams("params.hosts is required: expected an array of host names or patterns");
        var changed = hosts.SelectMany(h => h.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (changed.Count == 0)
        {
            throw RpcException.InvalidParams("params.hosts: no host given");
        }

        var list = sandbox.ChangeAllowList(changed, add);
        return w =>
        {
            WriteList(w, add ? "added" : "removed", changed);
            WriteList(w, "allowed_hosts", list);
        };
    }

    internal static string Url(NetworkEvent e)
    {
        if (e.Host is null)
        {
            return "";
        }

        var scheme = e.Protocol is "http/1.1" or "http/1.0" or "h2c" ? "http" : "https";
        return $"{scheme}://{e.Host}{e.Path}";
    }

    private static void WriteList(Utf8JsonWriter w, string name, IEnumerable<string> items)
    {
        w.WriteStartArray(name);
        foreach (var item in items)
        {
            w.WriteStringValue(item);
        }

        w.WriteEndArray();
    }
}
