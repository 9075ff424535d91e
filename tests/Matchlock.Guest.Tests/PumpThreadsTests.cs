using Matchlock.Guest.Agent;
using Matchlock.Tests;

namespace Matchlock.Guest.Tests;

/// <summary>The pumps' dedicated threads are parked and reused, not created per exec.</summary>
public sealed class PumpThreadsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_finished_pump_thread_is_parked_and_runs_the_next_pump()
    {
        var threads = new PumpThreads();
        var first = await RunAsync(threads);
        await WaitForIdleAsync(threads, 1);
        var second = await RunAsync(threads);
        Assert.Equal(first.Id, second.Id);
        Assert.True(first.Background, "pump threads must not keep the process alive");
    }

    [Fact]
    public async Task Blocked_pumps_do_not_hold_up_others_and_at_most_MaxIdle_threads_stay_parked()
    {
        var threads = new PumpThreads();
        using var release = new ManualResetEventSlim();
        var count = PumpThreads.MaxIdle + 2;
        var ids = new int[count];
        using var started = new CountdownEvent(count);
        for (var i = 0; i < count; i++)
        {
            var slot = i;
            threads.Start(() =>
            {
                ids[slot] = Environment.CurrentManagedThreadId;
                started.Signal();
                release.WaitHandle.WaitOne(Timeout); // blocks like a pump in read
            });
        }

        Assert.True(started.Wait(Timeout, TestContext.Current.CancellationToken), "a pump did not start while the others were blocked");
        Assert.Equal(count, ids.Distinct().Count());
        release.Set();
        await WaitForIdleAsync(threads, PumpThreads.MaxIdle);
        // Deliberate: an observation window in which nothing should happen (the two extra threads
        // end instead of parking), so there is no condition to wait for.
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(PumpThreads.MaxIdle, threads.IdleCount);
    }

    private static Task<(int Id, bool Background)> RunAsync(PumpThreads threads)
    {
        var done = new TaskCompletionSource<(int, bool)>(TaskCreationOptions.RunContinuationsAsynchronously);
        threads.Start(() => done.SetResult((Environment.CurrentManagedThreadId, Thread.CurrentThread.IsBackground)));
        return done.Task.WaitAsync(Timeout);
    }

    // A thread completes its work before it parks itself.
    private static Task WaitForIdleAsync(PumpThreads threads, int count) =>
        Eventually.Until(() => threads.IdleCount >= count, Timeout, $"{count} pump threads to park");
}
