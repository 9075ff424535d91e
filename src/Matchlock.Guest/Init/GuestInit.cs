using Matchlock.Guest.Agent;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Diagnostics;
using Matchlock.Guest.Processes;

namespace Matchlock.Guest.Init;

/// <summary>
/// PID 1's life: guard against exiting, boot, serve the host, power off. Nothing in here may
/// return to Main or let an exception escape, because PID 1 exiting panics the kernel; every
/// failure ends in <see cref="PowerControl.Fatal"/>, which logs to the console and powers off.
/// </summary>
internal static class GuestInit
{
    internal static void Run()
    {
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
            PowerControl.Fatal("unhandled exception", e.ExceptionObject as Exception);
        TaskScheduler.UnobservedTaskException += (_, e) =>
        {
            GuestLog.Error($"unobserved task exception: {e.Exception.GetBaseException().Message}");
            e.SetObserved();
        };

        try
        {
            SignalGuard.IgnoreTerminationSignals();
            var boot = Boot.Run();
            var reaper = Reaper.Shared;
            if (boot.CommandLine.ContainsKey("selftest"))
            {
                SelfTest.Run(new Spawner(reaper, "/proc/self/exe"));
                ShutdownSequence.PowerOff(reaper, boot.UpperMount, TimeSpan.FromSeconds(2), cgroups: null);
            }

            // Before the host can ask for anything: the agent in its own cgroup, protected, with
            // its threads started (issue 11 part 5: a guest that cannot starve its own management).
            AgentProtection.Apply();
            var cgroups = CgroupLayout.Create(CgroupLayout.DefaultRoot, CgroupLayout.ReadMemoryTotal(), Environment.ProcessId);
            foreach (var problem in cgroups.Problems)
            {
                GuestLog.Warn($"cgroups: {problem}");
            }

            AgentProtection.StartStraySweeper(cgroups);

            var grace = ServeHost(boot, reaper, cgroups);
            ShutdownSequence.PowerOff(reaper, boot.UpperMount, grace, cgroups);
        }
        catch (Exception e)
        {
            PowerControl.Fatal("init failed", e);
        }
    }

    /// <summary>Serves the host until it asks for shutdown; returns the grace it asked for.</summary>
    private static TimeSpan ServeHost(BootResult boot, Reaper reaper, CgroupLayout cgroups)
    {
        var device = VirtioPort.WaitFor(boot.ChannelName, TimeSpan.FromSeconds(10));
        using var link = PortLink.Open(device);
        var agent = new GuestAgent(reaper, AgentOptions.Guest, cgroups, fuse: new FuseModule(boot.VfsModules));
        GuestLog.Info($"serving the host on {device} ({boot.ChannelName})");
        while (true)
        {
            var hello = GuestAgent.BuildHello(boot.Timings);
            if (agent.ServeAsync(link.OpenSession(), hello, CancellationToken.None).GetAwaiter().GetResult())
            {
                return agent.ShutdownRequested.Result;
            }

            // The host's owner process is gone (killed, crashed): nobody can use or stop this VM
            // any more, so it powers off rather than run on unowned (docs/ARCHITECTURE.md D9). A link that never
            // carried a request was a false start; offer a new session on the same port.
            if (agent.HostWasServed)
            {
                GuestLog.Warn("the host went away; powering off");
                return TimeSpan.FromSeconds(1);
            }

            Thread.Sleep(TimeSpan.FromSeconds(1));
        }
    }
}
