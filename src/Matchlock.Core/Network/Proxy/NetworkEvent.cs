using System.Text.Json;
using System.Text.Json.Serialization;
using Matchlock.Core.Events;

namespace Matchlock.Core.Network.Proxy;

/// <summary>What a <see cref="NetworkEvent"/> records.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NetworkEventKind>))]
public enum NetworkEventKind
{
    /// <summary>A request passed the policy and is being forwarded.</summary>
    [JsonStringEnumMemberName("allowed")]
    Allowed,

    /// <summary>A request or connection was refused; <see cref="NetworkEvent.Reason"/> says why.</summary>
    [JsonStringEnumMemberName("denied")]
    Denied,

    /// <summary>A secret's placeholder was replaced by its value (<see cref="NetworkEvent.Secret"/> is the name).</summary>
    [JsonStringEnumMemberName("secret_injected")]
    SecretInjected,

    /// <summary>A hook rule matched and acted (<see cref="NetworkEvent.Hook"/>).</summary>
    [JsonStringEnumMemberName("hook_applied")]
    HookApplied,

    /// <summary>A forwarded request finished: status, bytes and duration.</summary>
    [JsonStringEnumMemberName("completed")]
    Completed,

    /// <summary>A raw TCP relay finished: bytes and duration.</summary>
    [JsonStringEnumMemberName("passthrough")]
    Passthrough,

    /// <summary>Forwarding failed (upstream unreachable, TLS failure, hook failure).</summary>
    [JsonStringEnumMemberName("error")]
    Error,
}

/// <summary>
/// One decision or outcome of the egress proxy. Carries secret <em>names</em>, never values, and the
/// request path without its query (the query is where secrets travel).
/// </summary>
public sealed record NetworkEvent : LoggedEvent
{
    public override string Type => "network";

    public required NetworkEventKind Kind { get; init; }

    public string? Host { get; init; }

    public int? Port { get; init; }

    public string? Method { get; init; }

    public string? Path { get; init; }

    /// <summary>"http/1.1", "h2", "tls-passthrough"… as seen from the guest.</summary>
    public string? Protocol { get; init; }

    public int? Status { get; init; }

    public string? Reason { get; init; }

    public string? Secret { get; init; }

    public string? Hook { get; init; }

    public long? BytesUp { get; init; }

    public long? BytesDown { get; init; }

    public double? DurationMs { get; init; }

    internal override void WriteJson(Utf8JsonWriter writer) => JsonSerializer.Serialize(writer, this, NetworkEventJsonContext.Default.NetworkEvent);
}

/// <summary>Source-generated JSON for events (NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NetworkEvent))]
internal sealed partial class NetworkEventJsonContext : JsonSerializerContext;
