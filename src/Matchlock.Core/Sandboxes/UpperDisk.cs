namespace Matchlock.Core.Sandboxes;

/// <summary>The per-VM writable disk (docs/ARCHITECTURE.md D5): a sparse file formatted ext4 on the host.</summary>
internal static class UpperDisk
{
    public static async Task CreateAsync(string path, int sizeMb, CancellationToken cancellationToken)
    {
        // Sparse: a 5 GiB disk costs a few MiB until the guest writes to it.
        await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            file.SetLength((long)sizeMb * 1024 * 1024);
        }

        // lazy_*_init: leave inode tables and the journal unzeroed; the file is sparse, so they
        // already read as zeros, and formatting costs ~10 ms whatever the size (measured).
        // -m 0: no root reserve in a sandbox.
        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync(
                "mke2fs",
                ["-t", "ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-L", "mlupper", path],
                environment: null,
                cancellationToken);
        }
        catch (FileNotFoundException ex)
        {
            throw new SandboxStartException("mke2fs was not found; run ./setup.sh (it installs e2fsprogs)", ex);
        }

        if (result.ExitCode != 0)
        {
            throw new SandboxStartException($"formatting the {sizeMb} MB writable disk failed (mke2fs exit {result.ExitCode}): {result.StandardError.Trim()}");
        }
    }
}
