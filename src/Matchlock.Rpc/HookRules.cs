using Matchlock.Core.Network.Policy;

namespace Matchlock.Rpc;

/// <summary><c>network.interception.rules</c> entries read into <see cref="HookRule"/>s (docs/COMPATIBILITY.md "Hook rules").</summary>
internal static class HookRules
{
    public static HookRule Read(RpcParams r, int index)
    {
        var phase = (r.OptionalString("phase") ?? "before").Trim().ToLowerInvariant() switch
        {
            "" or "before" => HookPhase.Before,
            "after" => HookPhase.After,
            var other => throw RpcException.InvalidParams($"network.interception.rules[{index}].phase \"{other}\": expected before or after"),
        };
        var rule = new HookRule
        {
            Name = r.OptionalString("name") is { Length: > 0 } name ? name : null,
            Phase = phase,
            Hosts = [.. (r.OptionalStringArray("hosts") ?? []).Select(h => Pattern(h, index))],
            Methods = r.OptionalStringArray("methods") ?? [],
            Path = r.OptionalString("path") is { Length: > 0 } path ? path : null,
            SetHeaders = Map(r, "set_headers"),
            DeleteHeaders = r.OptionalStringArray("delete_headers") ?? [],
            SetQuery = Map(r, "set_query"),
            DeleteQuery = r.OptionalStringArray("delete_query") ?? [],
            RewritePath = r.OptionalString("rewrite_path") is { Length: > 0 } rewrite ? rewrite : null,
            SetResponseHeaders = Map(r, "set_response_headers"),
            DeleteResponseHeaders = r.OptionalStringArray("delete_response_headers") ?? [],
            BodyReplacements = [.. r.ObjectArray("body_replacements").Select(b => new BodyReplacement(b.String("find"), b.OptionalString("replace") ?? ""))],
            CallbackId = r.OptionalString("callback_id") is { Length: > 0 } callback ? callback : null,
            CallbackTimeout = r.OptionalInt32("timeout_ms", 1, 600_000) is { } ms ? TimeSpan.FromMilliseconds(ms) : null,
        };

        // The original clients: Python sends action "allow" by default, TypeScript none; either
        // together with edits means mutate.
        var action = (r.OptionalString("action") ?? "").Trim().ToLowerInvariant();
        return rule with
        {
            Action = action switch
            {
                "block" => HookAction.Block,
                "mutate" => HookAction.Mutate,
                "" or "allow" => rule.HasEdits || rule.CallbackId is not null ? HookAction.Mutate : HookAction.Allow,
                _ => throw RpcException.InvalidParams($"network.interception.rules[{index}].action \"{action}\": expected allow, block or mutate"),
            },
        };
    }

    private static HostPattern Pattern(string text, int index)
    {
        try
        {
            return HostPattern.Parse(text);
        }
        catch (FormatException ex)
        {
            throw RpcException.InvalidParams($"network.interception.rules[{index}].hosts: {ex.Message}");
        }
    }

    private static IReadOnlyDictionary<string, string> Map(RpcParams r, string name) =>
        (r.OptionalStringMap(name) ?? []).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.OrdinalIgnoreCase);
}
