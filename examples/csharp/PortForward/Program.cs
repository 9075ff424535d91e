// Port forwarding: busybox httpd in the guest, fetched from the host.
using System.Globalization;
using Matchlock.Examples;
using Matchlock.Sdk;

return await Example.RunAsync(async ct =>
{
    var localPort = int.TryParse(Environment.GetEnvironmentVariable("MATCHLOCK_EXAMPLE_LOCAL_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : Upstream.FreePort();

    await using var sandbox = await MatchlockClient.CreateAsync(new SandboxOptions { Image = Example.Image }, Example.Client, ct);
    Console.WriteLine($"sandbox {sandbox.Id} is up");

    await sandbox.WriteFileAsync("/www/index.html", "hello from the sandbox\n", cancellationToken: ct);
    var httpd = await sandbox.ExecAsync("httpd -p 8080 -h /www", cancellationToken: ct); // busybox httpd daemonizes
    Example.Check(httpd.Succeeded, $"httpd started in the guest (stderr: {httpd.StderrText.Trim()})");

    var bindings = await sandbox.PortForwardAsync([new PortForward(localPort, 8080)], cancellationToken: ct);
    foreach (var binding in bindings)
    {
        Console.WriteLine($"forwarding {binding.Address}:{binding.LocalPort} -> guest :{binding.RemotePort}");
    }

    using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
    string? page = null;
    for (var attempt = 0; attempt < 20 && page is null; attempt++)
    {
        try
        {
            page = await http.GetStringAsync(new Uri($"http://127.0.0.1:{localPort}/"), ct);
        }
        catch (HttpRequestException)
        {
            await Task.Delay(250, ct); // httpd may still be coming up
        }
    }

    Example.Check(page == "hello from the sandbox\n", $"GET http://127.0.0.1:{localPort}/ returned the guest's page");
});
