using System.Net.Http;
using System.Net.Http.Headers;
using Matchlock.Core.Network.Policy;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Matchlock.Core.Network.Proxy;

/// <summary>What the request handler decided for one request, carried into the transformer.</summary>
internal sealed record ForwardPlan(
    UpstreamTarget Target,
    string Method,
    string Path,
    IReadOnlyList<SandboxSecrets.Entry> Inject,
    IReadOnlyList<(HookRule Rule, string Name)> AfterRules);

/// <summary>
/// Shapes the outgoing request and incoming response for one forwarded request. Starts from YARP's
/// base transformer (copies headers minus hop-by-hop ones, adds no X-Forwarded-* headers: the guest's
/// traffic should look like the guest's), then: keeps the guest's Host, tells the connect callback
/// which address to dial, substitutes secrets (headers and query only), and runs after-phase hooks.
/// </summary>
internal sealed class ForwardTransformer(ForwardPlan plan, EventPublisher events, int maxRewriteBodyBytes) : HttpTransformer
{
    private const int MaxEventStreamLineBytes = 1 << 20;

    // A callback may answer with body replacements: its responses must not be compressed either.
    private bool RewritesBodies => plan.AfterRules.Any(r => r.Rule.CallbackId is not null || (r.Rule.Action == HookAction.Mutate && r.Rule.BodyReplacements.Count > 0));

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        var request = httpContext.Request;
        var query = request.QueryString;
        if (plan.Inject.Count > 0)
        {
            if (query.HasValue)
            {
                var text = query.Value!;
                foreach (var entry in plan.Inject)
                {
                    text = text.Replace(entry.Placeholder, Uri.EscapeDataString(entry.Spec.Value), StringComparison.Ordinal);
                }

                query = new QueryString(text);
            }

            SubstituteHeaders(proxyRequest.Headers);
            if (proxyRequest.Content is not null)
            {
                SubstituteHeaders(proxyRequest.Content.Headers);
            }
        }

        proxyRequest.RequestUri = RequestUtilities.MakeDestinationAddress(destinationPrefix, request.Path, query);
        proxyRequest.Headers.Host = request.Host.Value;
        proxyRequest.Options.Set(UpstreamClient.TargetKey, plan.Target);
        if (RewritesBodies)
        {
            // Replacements are applied to the bytes we receive; they must not be compressed.
            proxyRequest.Headers.AcceptEncoding.Clear();
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var copyBody = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        if (proxyResponse is null || plan.AfterRules.Count == 0)
        {
            return copyBody;
        }

        var response = httpContext.Response;
        var host = plan.Target.Host.Value;
        var replacements = new List<BodyReplacement>();
        byte[]? newBody = null;
        foreach (var (rule, name) in plan.AfterRules)
        {
            if (rule.CallbackId is not null)
            {
                HookCallbackResult answer;
                try
                {
                    answer = await HookCallbacks.InvokeAsync(rule, name, new HookCallbackRequest
                    {
                        CallbackId = rule.CallbackId,
                        Phase = HookPhase.After,
                        Host = host,
                        Method = plan.Method,
                        Path = plan.Path,
                        RequestHeaders = HookCallbacks.Headers(httpContext.Request.Headers),
                        StatusCode = (int)proxyResponse.StatusCode,
                        ResponseHeaders = HookCallbacks.Headers(proxyResponse),
                        IsServerSentEvents = string.Equals(proxyResponse.Content.Headers.ContentType?.MediaType, "text/event-stream", StringComparison.OrdinalIgnoreCase),
                    }, cancellationToken);
                }
                catch (HookCallbackException e)
                {
                    events.Publish(NetworkEventKind.Denied, host, null, plan.Method, plan.Path, status: 403, reason: e.Message);
                    response.Clear();
                    await ProxyResponses.WriteBlockedAsync(httpContext, e.Message);
                    return false;
                }

                events.Publish(NetworkEventKind.HookApplied, host, null, plan.Method, plan.Path, hook: name, reason: $"after: callback {(answer.Action ?? HookAction.Mutate).ToString().ToLowerInvariant()}");
                if (answer.Action == HookAction.Block)
                {
                    response.Clear();
                    await ProxyResponses.WriteBlockedAsync(httpContext, $"the response from {host} was blocked by hook {name}");
                    return false;
                }

                HookCallbacks.ApplyToResponse(response, answer);
                replacements.AddRange(answer.BodyReplacements);
                newBody = answer.SetBody ?? newBody;
                if (answer.Action == HookAction.Allow)
                {
                    break;
                }

                continue;
            }

            events.Publish(NetworkEventKind.HookApplied, host, null, plan.Method, plan.Path, hook: name, reason: $"after: {rule.Action.ToString().ToLowerInvariant()}");
            if (rule.Action == HookAction.Allow)
            {
                break;
            }

            if (rule.Action == HookAction.Block)
            {
                response.Clear();
                await ProxyResponses.WriteBlockedAsync(httpContext, $"the response from {host} was blocked by hook rule {name}");
                return false;
            }

            foreach (var header in rule.DeleteResponseHeaders)
            {
                response.Headers.Remove(header);
            }

            foreach (var (header, value) in rule.SetResponseHeaders)
            {
                response.Headers[header] = value;
            }

            replacements.AddRange(rule.BodyReplacements);
        }

        if (newBody is not null && copyBody && proxyResponse.StatusCode != System.Net.HttpStatusCode.SwitchingProtocols)
        {
            // A hook replaced the whole body: the upstream's is not read, and nothing else rewrites.
            response.Headers.ContentLength = newBody.Length;
            response.Headers.Remove("Content-Encoding");
            await response.Body.WriteAsync(newBody, cancellationToken);
            return false;
        }

        if (replacements.Count == 0 || !copyBody || proxyResponse.StatusCode == System.Net.HttpStatusCode.SwitchingProtocols)
        {
            return copyBody;
        }

        var rewriter = new BodyRewriter(replacements);

        // From here we copy the body ourselves (YARP disposes the response when we return false).
        response.Headers.ContentLength = null;
        await using var source = await proxyResponse.Content.ReadAsStreamAsync(cancellationToken);
        var mediaType = proxyResponse.Content.Headers.ContentType?.MediaType;
        if (string.Equals(mediaType, "text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            await response.StartAsync(cancellationToken);
            await rewriter.CopyEventStreamAsync(source, response.Body, MaxEventStreamLineBytes, cancellationToken);
        }
        else
        {
            // Read everything before sending anything, so an oversized body can still become a 502.
            var body = await rewriter.RewriteWholeAsync(source, maxRewriteBodyBytes, cancellationToken);
            response.ContentLength = body.Length;
            await response.Body.WriteAsync(body, cancellationToken);
        }

        return false;
    }

    private void SubstituteHeaders(HttpHeaders headers)
    {
        List<(string Name, List<string> Values)>? changed = null;
        foreach (var (name, values) in headers.NonValidated)
        {
            var substituted = values.Select(v => SandboxSecrets.SubstituteHeader(name, v, plan.Inject)).ToList();
            if (!substituted.SequenceEqual(values, StringComparer.Ordinal))
            {
                (changed ??= []).Add((name, substituted));
            }
        }

        foreach (var (name, values) in changed ?? [])
        {
            headers.Remove(name);
            headers.TryAddWithoutValidation(name, values);
        }
    }
}
