using Matchlock.Core.Network.Policy;
using Microsoft.AspNetCore.Http;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Calling a rule's <see cref="HookRule.Callback"/> and applying its answer. Fail closed: no
/// callback, an exception, a timeout or an answer carrying an error all become a
/// <see cref="HookCallbackException"/>, and the request is blocked with its message.
/// </summary>
internal static class HookCallbacks
{
    /// <summary>How long a callback may take when its rule sets no <c>timeout_ms</c>.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    public static async Task<HookCallbackResult> InvokeAsync(HookRule rule, string name, HookCallbackRequest request, CancellationToken cancellationToken)
    {
        var callback = rule.Callback ?? throw new HookCallbackException($"hook {name} ({rule.CallbackId}) has no callback to answer it, so the request was blocked");
        var timeout = rule.CallbackTimeout ?? DefaultTimeout;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        HookCallbackResult answer;
        try
        {
            answer = await callback.InvokeAsync(request, deadline.Token).WaitAsync(deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HookCallbackException($"hook {name} did not answer within {timeout.TotalMilliseconds:0} ms, so the request was blocked");
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
        {
            throw new HookCallbackException($"hook {name} failed ({ex.Message}), so the request was blocked", ex);
        }

        return answer.Error is { } error
            ? throw new HookCallbackException($"hook {name} failed: {error}; the request was blocked")
            : answer;
    }

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Headers(IHeaderDictionary headers) =>
        headers.ToDictionary(h => h.Key, h => (IReadOnlyList<string>)[.. h.Value.Select(v => v ?? "")], StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Headers(System.Net.Http.HttpResponseMessage response)
    {
        var map = new Dictionary<string, IReadOnlyList<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, values) in response.Headers.NonValidated)
        {
            map[key] = [.. values];
        }

        foreach (var (key, values) in response.Content.Headers.NonValidated)
        {
            map[key] = [.. values];
        }

        return map;
    }

    /// <summary>Applies a before-phase answer: headers and query replace the whole map (Host excepted), a path rewrites; returns the path.</summary>
    public static string ApplyToRequest(HttpRequest request, HookCallbackResult answer, string path)
    {
        if (answer.RequestHeaders is { } headers)
        {
            foreach (var key in request.Headers.Keys.Where(k => !string.Equals(k, "Host", StringComparison.OrdinalIgnoreCase)).ToList())
            {
                request.Headers.Remove(key);
            }

            foreach (var (key, values) in headers)
            {
                if (!string.Equals(key, "Host", StringComparison.OrdinalIgnoreCase))
                {
                    request.Headers[key] = new Microsoft.Extensions.Primitives.StringValues([.. values]);
                }
            }
        }

        if (answer.Query is { } query)
        {
            request.QueryString = QueryString.Create(query.Select(q => new KeyValuePair<string, string?>(q.Key, q.Value)));
        }

        if (answer.Path is { } rewrite)
        {
            if (!rewrite.StartsWith('/'))
            {
                throw new HookCallbackException($"a hook answered with path '{rewrite}', which does not start with '/'; the request was blocked");
            }

            request.Path = new PathString(rewrite);
            return rewrite;
        }

        return path;
    }

    /// <summary>Applies an after-phase answer's headers (replacing all of the response's).</summary>
    public static void ApplyToResponse(HttpResponse response, HookCallbackResult answer)
    {
        if (answer.ResponseHeaders is not { } headers)
        {
            return;
        }

        response.Headers.Clear();
        foreach (var (key, values) in headers)
        {
            response.Headers[key] = new Microsoft.Extensions.Primitives.StringValues([.. values]);
        }
    }
}

/// <summary>A callback hook failed; the request is blocked with this message (the sandbox goes on).</summary>
internal sealed class HookCallbackException(string message, Exception? inner = null) : OperationFailedException(message, inner);
