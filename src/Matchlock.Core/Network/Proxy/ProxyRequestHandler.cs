using System.Diagnostics;
using Matchlock.Core.Network.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Forwarder;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// Decides and forwards one guest HTTP request. The steps, in order; each denial is a 403 with a
/// readable reason and an event, and nothing is sent upstream before every step has passed:
/// <list type="number">
/// <item>Form: no CONNECT tunnels (except HTTP/2 extended CONNECT, i.e. WebSockets); an absolute-form target must name the Host.</item>
/// <item>Host: the Host header / :authority as a canonical <see cref="HostName"/>.</item>
/// <item>TLS: the SNI must equal the Host (a guest could otherwise hand an allowed SNI to a forbidden Host).</item>
/// <item>Allow-list: <see cref="NetworkPolicy.IsHostAllowed"/>.</item>
/// <item>Destination: the original destination address must be pinned/add-host for that name and not a forbidden range.</item>
/// <item>Before hooks: allow / block / mutate, in order; a failing hook fails closed (502).</item>
/// <item>Secrets: every placeholder in headers (also inside Basic credentials), path or query must
/// belong to a secret for this host, and the request must be protected by TLS unless the secret was
/// declared for <c>http://</c> that host: a value injected into cleartext could be read on the way.</item>
/// <item>Forward through YARP (<see cref="ForwardTransformer"/> substitutes secrets and runs after hooks).</item>
/// </list>
/// </summary>
internal sealed class ProxyRequestHandler(
    EgressProxyOptions options,
    IHttpForwarder forwarder,
    UpstreamClient upstream,
    EventPublisher events)
{
    private static readonly ForwarderRequestConfig RequestConfig = new()
    {
        // No overall timeout: long polls, SSE and WebSockets live as long as the guest wants.
        ActivityTimeout = TimeSpan.FromMinutes(30),
    };

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var request = context.Request;
        var connection = context.Features.Get<ProxyConnectionFeature>()
            ?? throw new InvalidOperationException("request without a proxy connection");
        var destination = connection.OriginalDestination;
        var method = request.Method;
        var path = request.Path.HasValue ? request.Path.Value! : "/";
        var protocol = request.Protocol;

        if (FormProblem(context) is { } formProblem)
        {
            await DenyAsync(context, request.Host.HasValue ? request.Host.Host : null, destination.Port, method, path, protocol, formProblem);
            return;
        }

        if (!HostName.TryParse(request.Host.Host, out var host, out var hostError))
        {
            await DenyAsync(context, null, destination.Port, method, path, protocol, $"the request's Host is not usable: {hostError}");
            return;
        }

        var hostText = host.Value;
        if (connection.IsTls)
        {
            var sniProblem = connection.InvalidSni is not null ? $"the TLS server name '{connection.InvalidSni}' is not a valid host name"
                : connection.Sni is null ? (host.IsIPAddress && host.Address.Equals(destination.Address) ? null : $"TLS without a server name (SNI) cannot be used for {hostText}")
                : connection.Sni != host ? $"the TLS server name (SNI) {connection.Sni} does not match the Host {hostText}"
                : null;
            if (sniProblem is not null)
            {
                await DenyAsync(context, hostText, destination.Port, method, path, protocol, sniProblem);
                return;
            }
        }

        var decision = options.Policy.IsHostAllowed(host);
        if (decision.Allowed)
        {
            decision = options.Policy.CheckDestination(host, destination.Address);
        }

        if (!decision.Allowed)
        {
            await DenyAsync(context, hostText, destination.Port, method, path, protocol, decision.Reason);
            return;
        }

        // Before hooks, in order. A hook that throws fails closed.
        string? blockedBy = null;
        try
        {
            (blockedBy, path) = await RunBeforeHooksAsync(context, host, method, path);
        }
        catch (HookCallbackException e)
        {
            await DenyAsync(context, hostText, destination.Port, method, path, protocol, e.Message);
            return;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            events.Publish(NetworkEventKind.Error, hostText, destination.Port, method, path, protocol, 502, reason: $"hook failed: {e.Message}");
            await ProxyResponses.WriteFailedAsync(context, $"a request hook failed ({e.Message}), so the request was not sent");
            return;
        }

        if (blockedBy is not null)
        {
            await DenyAsync(context, hostText, destination.Port, method, path, protocol, $"blocked by hook rule {blockedBy}");
            return;
        }

        // Secrets: find every placeholder of ours; each must be meant for this host.
        var found = new HashSet<SandboxSecrets.Entry>();
        if (options.Secrets.Entries.Count > 0)
        {
            foreach (var (name, values) in request.Headers)
            {
                foreach (var value in values)
                {
                    options.Secrets.FindPlaceholdersInHeader(name, value, found);
                }
            }

            options.Secrets.FindPlaceholders(request.Path.Value, found);
            if (request.QueryString.HasValue)
            {
                // The query as the upstream will decode it: a percent-encoded placeholder is still a
                // placeholder, and a literal one has nothing to decode (hex digits and '_').
                options.Secrets.FindPlaceholders(Uri.UnescapeDataString(request.QueryString.Value!), found);
            }
        }

        foreach (var entry in found)
        {
            if (SecretProblem(entry, host, connection.IsTls) is { } problem)
            {
                events.Publish(NetworkEventKind.Denied, hostText, destination.Port, method, path, protocol, 403, secret: entry.Name, reason: problem.Reason);
                await ProxyResponses.WriteBlockedAsync(context, problem.Message);
                return;
            }
        }

        events.Publish(NetworkEventKind.Allowed, hostText, destination.Port, method, path, protocol, reason: decision.Reason);
        foreach (var entry in found)
        {
            events.Publish(NetworkEventKind.SecretInjected, hostText, destination.Port, method, path, protocol, secret: entry.Name);
        }

        var afterRules = options.Hooks
            .Select((rule, index) => (Rule: rule, Name: rule.DisplayName(index)))
            .Where(r => r.Rule.Phase == HookPhase.After && r.Rule.Matches(host, method, path))
            .ToList();
        var plan = new ForwardPlan(new UpstreamTarget(host, destination.Address), method, path, found.ToList(), afterRules);
        var transformer = new ForwardTransformer(plan, events, options.MaxRewriteBodyBytes);

        var requestBody = new CountingStream(request.Body);
        request.Body = requestBody;
        var responseBody = new CountingStream(context.Response.Body);
        context.Response.Body = responseBody;

        var scheme = connection.IsTls ? "https" : "http";
        ForwarderError error;
        try
        {
            error = await forwarder.SendAsync(context, $"{scheme}://{host.UriHost}:{destination.Port}", upstream.Invoker, RequestConfig, transformer);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or HttpRequestException)
        {
            // Thrown after the response started (e.g. a body rewrite failing mid-stream): abort, never pass on a partial answer as whole.
            events.Publish(NetworkEventKind.Error, hostText, destination.Port, method, path, protocol, context.Response.StatusCode, reason: e.Message,
                bytesUp: requestBody.Count, bytesDown: responseBody.Count, duration: Stopwatch.GetElapsedTime(started));
            context.Abort();
            return;
        }

        if (error != ForwarderError.None)
        {
            var failure = context.Features.Get<IForwarderErrorFeature>()?.Exception;
            events.Publish(NetworkEventKind.Error, hostText, destination.Port, method, path, protocol, context.Response.StatusCode,
                reason: $"{error}: {failure?.Message}", bytesUp: requestBody.Count, bytesDown: responseBody.Count, duration: Stopwatch.GetElapsedTime(started));
            return;
        }

        events.Publish(NetworkEventKind.Completed, hostText, destination.Port, method, path, protocol, context.Response.StatusCode,
            bytesUp: requestBody.Count, bytesDown: responseBody.Count, duration: Stopwatch.GetElapsedTime(started));
    }

    /// <summary>
    /// Why a request may not carry <paramref name="entry"/>'s placeholder (the event's reason and the
    /// 403's message), or null when it may: only to the secret's hosts, and only over TLS unless the
    /// secret names the host as <c>http://HOST</c>.
    /// </summary>
    private static (string Reason, string Message)? SecretProblem(SandboxSecrets.Entry entry, HostName host, bool isTls)
    {
        if (!entry.Spec.Hosts.Any(p => p.Matches(host)))
        {
            return ($"placeholder for secret {entry.Name} sent to a host it is not for",
                $"the request to {host.Value} carries the placeholder for secret {entry.Name}, which may only be sent to {string.Join(", ", entry.Spec.Hosts)}; nothing was sent");
        }

        if (!isTls && !entry.Spec.AllowsCleartext(host))
        {
            return ($"placeholder for secret {entry.Name} sent over cleartext HTTP",
                $"the request to {host.Value} carries the placeholder for secret {entry.Name} over cleartext HTTP; secrets are only sent over TLS (use https://{host.UriHost}/…), or declare the secret for http://{host.Value} to allow cleartext; nothing was sent");
        }

        return null;
    }

    /// <summary>
    /// Request forms that would let a guest name a second destination inside an allowed request:
    /// a CONNECT tunnel (every connection is already intercepted; a tunnel would carry what the proxy
    /// cannot see), and an absolute-form target whose authority is not the Host (RFC 9112 §3.2.2 says
    /// the target wins; some upstreams would route by it). Null when the form is acceptable.
    /// </summary>
    private static string? FormProblem(HttpContext context)
    {
        var request = context.Request;
        if (HttpMethods.IsConnect(request.Method))
        {
            return context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpExtendedConnectFeature>()?.IsExtendedConnect == true
                ? null
                : "CONNECT tunnels are not allowed: connections from the sandbox are intercepted directly, so make the request itself (https://host/…)";
        }

        var target = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target) || target[0] == '/' || target == "*")
        {
            return null;
        }

        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || !HostName.TryParse(uri.IdnHost, out var named)
            || !HostName.TryParse(request.Host.Host, out var host) || named != host
            || (uri.IsDefaultPort ? null : (int?)uri.Port) != request.Host.Port)
        {
            return $"the request target '{target}' names a different host than the Host header '{request.Host.Value}'";
        }

        return null;
    }

    /// <summary>Runs matching before-phase rules; returns the name of a blocking rule (or null) and the path after rewrites.</summary>
    /// <exception cref="HookCallbackException">A callback rule failed, answered badly or too late: the request is blocked.</exception>
    private async Task<(string? BlockedBy, string Path)> RunBeforeHooksAsync(HttpContext context, HostName host, string method, string path)
    {
        var request = context.Request;
        for (var i = 0; i < options.Hooks.Count; i++)
        {
            var rule = options.Hooks[i];
            if (rule.Phase != HookPhase.Before || !rule.Matches(host, method, path))
            {
                continue;
            }

            var name = rule.DisplayName(i);
            if (rule.CallbackId is not null)
            {
                var answer = await HookCallbacks.InvokeAsync(rule, name, new HookCallbackRequest
                {
                    CallbackId = rule.CallbackId,
                    Phase = HookPhase.Before,
                    Host = host.Value,
                    Method = method,
                    Path = path,
                    Query = QueryHelpers.ParseQuery(request.QueryString.Value).ToDictionary(q => q.Key, q => q.Value.ToString(), StringComparer.Ordinal),
                    RequestHeaders = HookCallbacks.Headers(request.Headers),
                }, context.RequestAborted);
                events.Publish(NetworkEventKind.HookApplied, host.Value, null, method, path, hook: name, reason: $"before: callback {(answer.Action ?? HookAction.Mutate).ToString().ToLowerInvariant()}");
                if (answer.Action == HookAction.Block)
                {
                    return (name, path);
                }

                path = HookCallbacks.ApplyToRequest(request, answer, path);
                if (answer.Action == HookAction.Allow)
                {
                    return (null, path);
                }

                continue;
            }

            events.Publish(NetworkEventKind.HookApplied, host.Value, null, method, path, hook: name, reason: $"before: {rule.Action.ToString().ToLowerInvariant()}");
            switch (rule.Action)
            {
                case HookAction.Allow:
                    return (null, path);
                case HookAction.Block:
                    return (name, path);
            }

            foreach (var header in rule.DeleteHeaders)
            {
                request.Headers.Remove(header);
            }

            foreach (var (header, value) in rule.SetHeaders)
            {
                request.Headers[header] = value;
            }

            if (rule.SetQuery.Count > 0 || rule.DeleteQuery.Count > 0)
            {
                var query = QueryHelpers.ParseQuery(request.QueryString.Value);
                foreach (var key in rule.DeleteQuery)
                {
                    query.Remove(key);
                }

                foreach (var (key, value) in rule.SetQuery)
                {
                    query[key] = value;
                }

                request.QueryString = QueryString.Create(query.SelectMany(q => q.Value.Select(v => new KeyValuePair<string, string?>(q.Key, v))));
            }

            if (rule.RewritePath is { } rewrite)
            {
                if (!rewrite.StartsWith('/'))
                {
                    throw new FormatException($"hook rule {name}: rewrite_path '{rewrite}' must start with '/'");
                }

                request.Path = new PathString(rewrite);
                path = rewrite;
            }
        }

        return (null, path);
    }

    private async Task DenyAsync(HttpContext context, string? host, int port, string method, string path, string protocol, string reason)
    {
        events.Publish(NetworkEventKind.Denied, host, port, method, path, protocol, 403, reason: reason);
        await ProxyResponses.WriteBlockedAsync(context, reason);
    }
}
