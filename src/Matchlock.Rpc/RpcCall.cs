using System.Text.Json;

namespace Matchlock.Rpc;

/// <summary>One request being handled: its id (absent for a notification), method, params and cancellation.</summary>
internal sealed class RpcCall(JsonElement? id, string method, RpcParams parameters, CancellationToken cancelled)
{
    public JsonElement? Id { get; } = id;

    public string Method { get; } = method;

    public RpcParams Params { get; } = parameters;

    /// <summary>Fires on <c>cancel</c> of this id, and when the server stops.</summary>
    public CancellationToken Cancelled { get; } = cancelled;

    /// <summary>The key by which <c>cancel</c> and the stdin methods name this request.</summary>
    public string? Key => Id is { } id ? KeyOf(id) : null;

    public static string KeyOf(JsonElement id) => id.GetRawText();

    /// <summary>The id for notifications about this request (a notification without an id gets 0).</summary>
    public JsonElement NotificationId => Id ?? ZeroId;

    private static readonly JsonElement ZeroId = JsonDocument.Parse("0").RootElement.Clone();
}
