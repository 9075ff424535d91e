using System.Text.Json.Serialization;

namespace Matchlock.Protocol.Messages;

/// <summary>Source-generated serializers: the guest is NativeAOT, so no reflection.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(GuestRequest))]
[JsonSerializable(typeof(ExecControl))]
[JsonSerializable(typeof(GuestReply))]
[JsonSerializable(typeof(GuestHello))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext;
