namespace Matchlock.Core.Network.Policy;

/// <summary>
/// A hook rule's callback into the program that set it (the SDKs' callback hooks, served by the
/// rpc server over the SDK's UNIX socket). Any failure — an exception, a timeout, an answer with
/// an error — blocks the request: a hook that cannot say yes means no.
/// </summary>
public interface INetworkHookCallback
{
    Task<HookCallbackResult> InvokeAsync(HookCallbackRequest request, CancellationToken cancellationToken);
}

/// <summary>What a callback is told about a request (after phase: and its response's head).</summary>
public sealed record HookCallbackRequest
{
    public required string CallbackId { get; init; }

    public required HookPhase Phase { get; init; }

    public required string Host { get; init; }

    public required string Method { get; init; }

    public required string Path { get; init; }

    public IReadOnlyDictionary<string, string> Query { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, IReadOnlyList<string>> RequestHeaders { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    public int? StatusCode { get; init; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>>? ResponseHeaders { get; init; }

    public bool IsServerSentEvents { get; init; }
}

/// <summary>
/// A callback's answer. No action and no changes: go on unchanged. Request headers and query,
/// when given, replace the whole map (the Host header excepted); the response's likewise.
/// </summary>
public sealed record HookCallbackResult
{
    public HookAction? Action { get; init; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>>? RequestHeaders { get; init; }

    public IReadOnlyDictionary<string, string>? Query { get; init; }

    public string? Path { get; init; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>>? ResponseHeaders { get; init; }

    public IReadOnlyList<BodyReplacement> BodyReplacements { get; init; } = [];

    /// <summary>Replaces the whole response body.</summary>
    public byte[]? SetBody { get; init; }

    /// <summary>The hook failed: the request is blocked with this reason.</summary>
    public string? Error { get; init; }
}
