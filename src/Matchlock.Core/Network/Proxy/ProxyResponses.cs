using Microsoft.AspNetCore.Http;

namespace Matchlock.Core.Network.Proxy;

/// <summary>The responses the proxy itself produces. Bodies are plain text: agents read them.</summary>
internal static class ProxyResponses
{
    /// <summary>Response header naming the proxy as the source of a refusal, so clients can tell it from an upstream 403.</summary>
    public const string BlockedHeader = "X-Matchlock-Blocked";

    public static Task WriteBlockedAsync(HttpContext context, string reason) =>
        WriteAsync(context, StatusCodes.Status403Forbidden, $"Blocked by the Matchlock sandbox network policy: {reason}\n");

    public static Task WriteFailedAsync(HttpContext context, string reason) =>
        WriteAsync(context, StatusCodes.Status502BadGateway, $"The Matchlock sandbox proxy could not complete this request: {reason}\n");

    private static Task WriteAsync(HttpContext context, int status, string body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers[BlockedHeader] = status == StatusCodes.Status403Forbidden ? "policy" : "error";
        response.Headers.CacheControl = "no-store";
        return response.WriteAsync(body, context.RequestAborted);
    }
}
