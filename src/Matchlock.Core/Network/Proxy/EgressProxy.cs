using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Matchlock.Core.Network.Proxy;

/// <summary>
/// One sandbox's egress proxy (docs/ARCHITECTURE.md D8): every guest TCP connection, DNATed to one of the
/// listeners, ends here. TLS is terminated with a leaf for the SNI minted by the sandbox CA, HTTP/1.1
/// and HTTP/2 are served by Kestrel, requests are checked against the <see cref="Policy.NetworkPolicy"/>,
/// secrets and hooks are applied, and allowed requests are forwarded by YARP's
/// <see cref="IHttpForwarder"/> to the original destination port. Connections that are neither TLS
/// nor HTTP are relayed raw only where the policy allows raw TCP (<see cref="ConnectionRouter"/>).
/// </summary>
/// <remarks>
/// Hosting: a slim <see cref="WebApplication"/> (NativeAOT-safe: no MVC, no reflection JSON) whose
/// only transport is <see cref="GivenSocketListenerFactory"/> over the listeners we are given, and
/// whose connection pipeline is <see cref="ConnectionRouter"/>. The host is quiet and hermetic: no
/// configuration sources (so no ASPNETCORE_URLS from the environment), no console lifetime (the CLI
/// owns SIGINT/SIGTERM), no logging providers unless given.
/// </remarks>
internal sealed class EgressProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly UpstreamClient _upstream;

    private EgressProxy(WebApplication app, UpstreamClient upstream)
    {
        _app = app;
        _upstream = upstream;
    }

    /// <summary>Starts serving on <see cref="EgressProxyOptions.Listeners"/>; returns once they accept.</summary>
    public static async Task<EgressProxy> StartAsync(EgressProxyOptions options, CancellationToken cancellationToken = default, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Listeners.Count == 0)
        {
            throw new ArgumentException("the egress proxy needs at least one listening socket", nameof(options));
        }

        var upstream = new UpstreamClient(options.Policy, options.UpstreamCaFile);
        try
        {
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
            {
                ApplicationName = "Matchlock.EgressProxy",
                EnvironmentName = Environments.Production,
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.Configuration.Sources.Clear();
            builder.Logging.ClearProviders();
            if (loggerFactory is not null)
            {
                builder.Services.AddSingleton(loggerFactory);
            }

            builder.Services.AddSingleton<IHostLifetime, OwnerControlledLifetime>();
            builder.Services.AddHttpForwarder();
            builder.Services.AddSingleton<IConnectionListenerFactory>(sp =>
                new GivenSocketListenerFactory(options.OriginalDestination, sp.GetRequiredService<ILoggerFactory>()));

            var events = new EventPublisher(options.Events, options.Time);
            var relay = new TcpRelay(options.Policy, events);
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
                kestrel.Limits.MaxConcurrentUpgradedConnections = options.MaxConnections;
                kestrel.Limits.MaxRequestBodySize = null;
                // Agents stream slowly (SSE, long polls): the proxy must not impose data-rate minimums.
                kestrel.Limits.MinRequestBodyDataRate = null;
                kestrel.Limits.MinResponseDataRate = null;
                kestrel.Limits.Http2.InitialConnectionWindowSize = 4 << 20;
                kestrel.Limits.Http2.InitialStreamWindowSize = 2 << 20;
                for (var i = 0; i < options.Listeners.Count; i++)
                {
                    var router = new ConnectionRouter(options.Policy, relay, events, options.Authority, options.SniffTimeout, options.FirstByteTimeout);
                    kestrel.Listen(new GivenSocketEndPoint(options.Listeners[i], i), listen =>
                    {
                        listen.Protocols = HttpProtocols.Http1AndHttp2;
                        listen.Use(router.Sniff);
                        listen.UseHttps(new TlsHandshakeCallbackOptions
                        {
                            OnConnection = router.SelectCertificate,
                            HandshakeTimeout = TimeSpan.FromSeconds(15),
                        });
                        listen.Use(router.Capture);
                    });
                }
            });

            var app = builder.Build();
            var handler = new ProxyRequestHandler(options, app.Services.GetRequiredService<IHttpForwarder>(), upstream, events);
            app.Run(handler.HandleAsync);
            await app.StartAsync(cancellationToken);
            return new EgressProxy(app, upstream);
        }
        catch
        {
            upstream.Dispose();
            throw;
        }
    }

    /// <summary>Stops accepting, closes connections (gracefully for a short while), disposes the listeners.</summary>
    public async ValueTask DisposeAsync()
    {
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
        {
            await _app.StopAsync(grace.Token);
        }

        await _app.DisposeAsync();
        _upstream.Dispose();
    }

    /// <summary>The proxy starts and stops when its owner says so, not on console signals.</summary>
    private sealed class OwnerControlledLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
