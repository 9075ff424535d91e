using Matchlock.Integration.Tests.Rpc;

namespace Matchlock.Integration.Tests.Vfs;

/// <summary>
/// The workspace VFS with a real guest (docs/VFS.md): host folders through the guest's FUSE
/// relay and the host's FUSE server. Two VM boots.
/// </summary>
public sealed class VfsVmTests(MatchlockHome home) : IClassFixture<MatchlockHome>, IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("matchlock-vfs-it-");
    private readonly string _outside = Path.Combine(Path.GetTempPath(), $"matchlock-vfs-outside-{Guid.NewGuid():N}");

    public void Dispose()
    {
        _folder.Delete(recursive: true);
        File.Delete(_outside);
    }

    private Task<CliResult> Run(string mounts, string script) =>
        home.RunAsync(["run", "--image", "busybox", "--no-network", .. mounts.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--", "sh", "-c", script], timeout: TimeSpan.FromMinutes(3));

    [Fact]
    public async Task A_host_fs_mount_is_the_host_folder_both_ways_and_nothing_reaches_outside_it()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "from-host"), "written on the host\n");
        File.WriteAllText(_outside, "outside the mount\n");
        File.CreateSymbolicLink(Path.Combine(_folder.FullName, "escape"), _outside); // resolves in the guest, not on the host
        Directory.CreateDirectory(Path.Combine(_folder.FullName, "sub"));

        var running = Run($"-v {_folder.FullName}:/work:host_fs", """
            cd /work
            cat from-host
            echo made > f && ln f hard && ln -s f soft && mv f g && chmod 640 g
            mkdir -p tree/a && echo x > tree/a/b && tar cf /tmp/t.tar tree && rm -r tree && tar xf /tmp/t.tar && cat tree/a/b
            echo "escape:$(cat escape 2>&1)"
            echo "dotdot:$(cat sub/../../etc/hostname)"
            stat -c '%n %h %a %s' g hard
            echo "fstype:$(grep ' /work ' /proc/mounts | cut -d' ' -f3)"
            chown 1234:5678 g && echo "owner:$(stat -c '%u:%g' g)"
            stat -c %s from-host > /dev/null && : > ready
            i=0; while [ ! -e changed ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
            sleep 1.5
            echo "after:$(cat from-host)|$(cat new-on-host)|$(ls sub 2>&1)"
            """);

        // Host-side changes while the guest runs (it has looked at these names): seen within the
        // 1 s attribute/entry timeouts, data at the next open (docs/VFS.md "Caching").
        for (var i = 0; i < 1200 && !File.Exists(Path.Combine(_folder.FullName, "ready")) && !running.IsCompleted; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        File.WriteAllText(Path.Combine(_folder.FullName, "from-host"), "rewritten on the host, longer\n");
        File.WriteAllText(Path.Combine(_folder.FullName, "new-on-host"), "new");
        Directory.Delete(Path.Combine(_folder.FullName, "sub"));
        File.WriteAllText(Path.Combine(_folder.FullName, "changed"), "");
        var r = await running;
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("after:rewritten on the host, longer|new|ls: sub: No such file or directory\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("fstype:virtiofs\n", r.Stdout, StringComparison.Ordinal); // the vhost-user transport is the default
        Assert.Contains("written on the host\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("x\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("escape:cat: can't open 'escape': No such file or directory", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("outside the mount", r.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"dotdot:vm-[0-9a-f]{8}\n", r.Stdout); // the guest's own /etc/hostname
        Assert.Contains("g 2 640 5\nhard 2 640 5\nfstype:virtiofs\nowner:1234:5678\n", r.Stdout, StringComparison.Ordinal);

        // On the host: the same files, one inode for the hard link, the symlink's text as written.
        var g = Path.Combine(_folder.FullName, "g");
        Assert.Equal("made\n", File.ReadAllText(g));
        Assert.Equal("made\n", File.ReadAllText(Path.Combine(_folder.FullName, "hard")));
        Assert.Equal("f", new FileInfo(Path.Combine(_folder.FullName, "soft")).LinkTarget);
        Assert.Equal("x\n", File.ReadAllText(Path.Combine(_folder.FullName, "tree", "a", "b")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(g));

        // chown in the guest is the guest's view only: the host file keeps the folder owner's ids,
        // the guest's are in the ownership xattr (docs/VFS.md "Ownership").
        var owner = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3",
            ["-c", $"import os; st, d = os.stat('{g}'), os.stat('{_folder.FullName}'); print(st.st_uid == d.st_uid and st.st_gid == d.st_gid, os.getxattr('{g}', 'user.matchlock.owner').decode())"])
            { RedirectStandardOutput = true })!;
        var ownerLine = await owner.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await owner.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.StartsWith("True 1234:5678:", ownerLine, StringComparison.Ordinal);
        Assert.Equal("outside the mount\n", File.ReadAllText(_outside));
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task The_channel_transport_still_serves_a_host_folder_when_chosen()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "from-host"), "written on the host\n");
        var r = await home.RunAsync(
            ["run", "--image", "busybox", "--no-network", "-v", $"{_folder.FullName}:/work:host_fs", "--", "sh", "-c", """
                cd /work
                cat from-host
                echo made > f && mv f g && mkdir d && echo x > d/y && rm from-host
                echo "fstype:$(grep ' /work ' /proc/mounts | cut -d' ' -f3)"
                """],
            timeout: TimeSpan.FromMinutes(3),
            env: new Dictionary<string, string> { ["MATCHLOCK_VFS_TRANSPORT"] = "channel" });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("written on the host\nfstype:fuse\n", r.Stdout);
        Assert.Equal("made\n", File.ReadAllText(Path.Combine(_folder.FullName, "g")));
        Assert.Equal("x\n", File.ReadAllText(Path.Combine(_folder.FullName, "d", "y")));
        Assert.False(File.Exists(Path.Combine(_folder.FullName, "from-host")));
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task A_read_only_mount_refuses_every_write()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "kept"), "unchanged\n");
        var r = await Run($"-v {_folder.FullName}:ro-view:ro", """
            cd /workspace/ro-view
            cat kept
            for op in "echo x > new" "echo x >> kept" "rm kept" "mkdir d" "mv kept k2" "chmod 777 kept" "ln kept h" "ln -s kept s" "touch kept"; do
              sh -c "$op" 2>/dev/null && echo "WROTE: $op"
            done
            echo done
            """);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("unchanged\ndone\n", r.Stdout);
        Assert.Equal(["kept"], _folder.EnumerateFileSystemInfos().Select(f => f.Name));
        Assert.Equal("unchanged\n", File.ReadAllText(Path.Combine(_folder.FullName, "kept")));
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task An_overlay_mount_shows_the_folder_and_keeps_the_guests_changes_to_itself()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "file"), "original\n");
        Directory.CreateDirectory(Path.Combine(_folder.FullName, "sub"));
        File.WriteAllText(Path.Combine(_folder.FullName, "sub", "inner"), "inner\n");

        // The default type: -v HOST:GUEST is an overlay.
        var r = await Run($"-v {_folder.FullName}:repo", """
            cd /workspace/repo
            cat file
            echo changed > file && echo new > added && rm -r sub && ln -s file link
            ls
            cat file
            """);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("original\nadded\nfile\nlink\nchanged\n", r.Stdout);

        // The host folder is untouched, and no overlay stays mounted on the host.
        Assert.Equal("original\n", File.ReadAllText(Path.Combine(_folder.FullName, "file")));
        Assert.Equal(["file", "sub"], _folder.EnumerateFileSystemInfos().Select(f => f.Name).Order());
        Assert.Equal("inner\n", File.ReadAllText(Path.Combine(_folder.FullName, "sub", "inner")));
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(home.Root, StringComparison.Ordinal));
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task An_overlay_a_killed_owner_left_mounted_is_unmounted_by_rm_and_the_folder_is_untouched()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "file"), "original\n");
        var run = await home.RunAsync(["run", "-d", "--image", "busybox", "--no-network", "-v", $"{_folder.FullName}:/w"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(run.ExitCode == 0, run.ToString());
        var id = run.Stdout.Trim();
        Assert.Equal(0, (await home.RunAsync(["exec", id, "--", "sh", "-c", "echo guest > /w/file"])).ExitCode);
        Assert.Contains(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(home.Root, StringComparison.Ordinal));

        var owner = home.OwnerPid(id);
        Assert.Equal(0, Interop.Kill(owner, 9)); // no clean-up of its own
        await Matchlock.Tests.Eventually.Until(
            () => home.QemuProcesses().Count == 0 && !Matchlock.Core.Interop.OwnerNative.IsAlive(owner), TimeSpan.FromSeconds(30), "QEMU and its owner to be gone");
        var rm = await home.RunAsync(["rm", id]);
        Assert.True(rm.ExitCode == 0, rm.ToString());
        Assert.DoesNotContain(File.ReadAllLines("/proc/self/mountinfo"), l => l.Contains(home.Root, StringComparison.Ordinal));
        Assert.Equal("original\n", File.ReadAllText(Path.Combine(_folder.FullName, "file")));
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Single_files_mount_read_only_live_or_as_a_private_copy_and_their_folder_stays_out_of_reach()
    {
        VmPrerequisites.Ensure();
        var config = Path.Combine(_folder.FullName, "config.json");
        var key = Path.Combine(_folder.FullName, "key");
        var notes = Path.Combine(_folder.FullName, "notes.txt");
        File.WriteAllText(config, "{\"mode\":\"ro\"}\n");
        File.WriteAllText(key, "host key\n");
        File.WriteAllText(notes, "original\n");
        File.WriteAllText(Path.Combine(_folder.FullName, "sibling"), "must stay unseen\n");
        var r = await Run($"-v {config}:/etc/app/config.json:ro -v {key}:/root/.ssh/key:host_fs -v {notes}:notes.txt", """
            cat /etc/app/config.json
            echo "ro:$(echo x 2>&1 > /etc/app/config.json)"
            echo changed > /root/.ssh/key && cat /root/.ssh/key
            echo private > /workspace/notes.txt && cat /workspace/notes.txt
            ls -a /run/matchlock/vfs/0
            echo "sibling:$(cat /run/matchlock/vfs/0/sibling 2>&1)"
            echo "make:$(touch /run/matchlock/vfs/1/new 2>&1)"
            """);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("{\"mode\":\"ro\"}\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("ro:sh: can't create /etc/app/config.json: Read-only file system", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("changed\nprivate\n", r.Stdout, StringComparison.Ordinal);
        Assert.Contains(".\n..\nconfig.json\n", r.Stdout, StringComparison.Ordinal); // the view holds the one file
        Assert.Contains("sibling:cat: can't open '/run/matchlock/vfs/0/sibling': No such file or directory", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("make:touch: /run/matchlock/vfs/1/new: Operation not permitted", r.Stdout, StringComparison.Ordinal);

        Assert.Equal("{\"mode\":\"ro\"}\n", File.ReadAllText(config));
        Assert.Equal("changed\n", File.ReadAllText(key)); // host_fs: live
        Assert.Equal("original\n", File.ReadAllText(notes)); // overlay (the default): a private copy
        Assert.Equal(["config.json", "key", "notes.txt", "sibling"], Directory.GetFiles(_folder.FullName).Select(Path.GetFileName).Order());
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task The_rpc_vfs_field_mounts_host_folders_and_memory_trees_with_blocking_rules_and_file_events()
    {
        VmPrerequisites.Ensure();
        File.WriteAllText(Path.Combine(_folder.FullName, "in"), "via rpc\n");
        await using var rpc = new RpcClient(home);
        var id = (await rpc.CallAsync("create", new
        {
            image = "busybox",
            network = new { no_network = true },
            vfs = new Dictionary<string, object>
            {
                ["mounts"] = new Dictionary<string, object>
                {
                    ["repo"] = new { type = "host_fs", host_path = _folder.FullName },
                    ["/scratch"] = new { type = "memory" },
                },
                ["interception"] = new
                {
                    emit_events = true,
                    rules = new[] { new { name = "no-secrets", phase = "before", ops = new[] { "create", "write" }, path = "/workspace/repo/secret*", action = "block" } },
                },
            },
        })).GetProperty("id").GetString()!;
        var inspect = await home.RunAsync(["inspect", id]);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Contains($"{_folder.FullName} -> /workspace/repo (host_fs)", inspect.Stdout, StringComparison.Ordinal);
        Assert.Contains("(memory) -> /scratch (memory)", inspect.Stdout, StringComparison.Ordinal);
        var result = await rpc.CallAsync("exec", new { command = "cat /workspace/repo/in && echo out > /workspace/repo/out && echo mem > /scratch/m && cat /scratch/m" });
        Assert.Equal("via rpc\nmem\n", RpcClient.Text(result.GetProperty("stdout")));
        Assert.Equal("out\n", File.ReadAllText(Path.Combine(_folder.FullName, "out")));

        // A blocking rule: the guest gets EPERM, the host folder stays untouched, the refusal is logged.
        var blocked = await rpc.CallAsync("exec", new { command = "echo leak > /workspace/repo/secret.txt; echo status=$?" });
        Assert.Contains("Operation not permitted", RpcClient.Text(blocked.GetProperty("stderr")), StringComparison.Ordinal);
        Assert.Equal("status=1\n", RpcClient.Text(blocked.GetProperty("stdout")));
        Assert.False(File.Exists(Path.Combine(_folder.FullName, "secret.txt")));

        // emit_events: the write of "out" arrived as a file event with the fields the SDKs read.
        var files = rpc.Notifications.Where(n => n.GetProperty("method").GetString() == "event" && n.GetProperty("params").GetProperty("type").GetString() == "file")
            .Select(n => n.GetProperty("params").GetProperty("file")).ToList();
        var write = Assert.Single(files, f => f.GetProperty("op").GetString() == "write" && f.GetProperty("path").GetString() == "/workspace/repo/out");
        Assert.Equal(4, write.GetProperty("size").GetInt64());
        Assert.Contains(files, f => f.GetProperty("op").GetString() == "write" && f.GetProperty("path").GetString() == "/scratch/m");
        Assert.DoesNotContain(files, f => f.GetProperty("path").GetString()!.Contains("secret", StringComparison.Ordinal)); // refusals are not events to the SDK
        await rpc.CallAsync("close", new { timeout_seconds = 2 });
        await rpc.EndAsync(TimeSpan.FromSeconds(20));
        var log = await File.ReadAllLinesAsync(Path.Combine(home.VmsDir, id, "events.jsonl"), TestContext.Current.CancellationToken);
        Assert.Contains(log, l => l.Contains("\"blocked_by\":\"rule 'no-secrets'\"", StringComparison.Ordinal) && l.Contains("/workspace/repo/secret.txt", StringComparison.Ordinal));
        Assert.True((await home.RunAsync(["rm", id])).ExitCode == 0);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Sqlite_in_wal_mode_with_two_writers_works_on_a_host_fs_mount_and_the_host_reads_the_same_database()
    {
        VmPrerequisites.Ensure();
        if (await home.ImportDebianTestImageAsync() is { } why)
        {
            HostPrerequisites.SkipOrFail(why);
        }

        // WAL needs shared-memory mmap of the -shm file and POSIX locks between the two processes.
        File.WriteAllText(Path.Combine(_folder.FullName, "t.py"), """
            import sqlite3, multiprocessing
            def writer(n):
                c = sqlite3.connect("/w/db.sqlite", timeout=60)
                for i in range(100):
                    c.execute("insert into t values (?, ?)", (n, i)); c.commit()
                c.close()
            c = sqlite3.connect("/w/db.sqlite")
            print(c.execute("pragma journal_mode=wal").fetchone()[0])
            c.execute("create table t (w, i)"); c.commit(); c.close()
            ps = [multiprocessing.Process(target=writer, args=(n,)) for n in range(2)]
            [p.start() for p in ps]; [p.join() for p in ps]
            c = sqlite3.connect("/w/db.sqlite")
            print(c.execute("select count(*) from t").fetchone()[0], c.execute("pragma integrity_check").fetchone()[0])
            """);
        var r = await home.RunAsync(["run", "--image", "debian-test:latest", "--no-network", "-v", $"{_folder.FullName}:/w:host_fs", "--", "python3", "/w/t.py"], timeout: TimeSpan.FromMinutes(4));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("wal\n200 ok\n", r.Stdout);

        // The host's own sqlite3 (through python3 here) sees the same, intact database.
        var check = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3", ["-c",
            $"import sqlite3; c = sqlite3.connect('{Path.Combine(_folder.FullName, "db.sqlite")}'); print(c.execute('select count(*) from t').fetchone()[0], c.execute('pragma integrity_check').fetchone()[0])"])
            { RedirectStandardOutput = true })!;
        var hostView = await check.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await check.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal("200 ok\n", hostView);
        home.AssertNothingLeft();
    }

    [Fact]
    public async Task Git_and_a_c_build_with_make_work_on_a_host_fs_mount_and_the_host_sees_a_valid_repository()
    {
        VmPrerequisites.Ensure();
        if (await home.ImportDebianTestImageAsync() is { } why)
        {
            HostPrerequisites.SkipOrFail(why);
        }

        // A source archive made on the host: 40 C files and a Makefile, untarred and built in the guest.
        var project = Directory.CreateTempSubdirectory("matchlock-vfs-src-");
        try
        {
            var src = Directory.CreateDirectory(Path.Combine(project.FullName, "proj", "src"));
            for (var i = 0; i < 40; i++)
            {
                File.WriteAllText(Path.Combine(src.FullName, $"f{i}.c"), $"int f{i}(void) {{ return {i}; }}\n");
            }

            File.WriteAllText(Path.Combine(src.FullName, "main.c"),
                "#include <stdio.h>\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"int f{i}(void);\n")) +
                "int main(void) { int s = 0;\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"s += f{i}();\n")) + "printf(\"sum=%d\\n\", s); return 0; }\n");
            File.WriteAllText(Path.Combine(project.FullName, "proj", "Makefile"),
                "SRC := $(wildcard src/*.c)\nOBJ := $(SRC:.c=.o)\napp: $(OBJ)\n\t$(CC) -o $@ $(OBJ)\n%.o: %.c\n\t$(CC) -c -o $@ $<\nclean:\n\trm -f app $(OBJ)\n");
            var tar = System.Diagnostics.Process.Start("tar", ["-czf", Path.Combine(_folder.FullName, "proj.tgz"), "-C", project.FullName, "proj"])!;
            await tar.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, tar.ExitCode);
        }
        finally
        {
            project.Delete(recursive: true);
        }

        const string Script = """
            set -e
            cd /w
            tar -xzf proj.tgz && cd proj && make -s -j2 CC=tcc && ./app && make -s CC=tcc && echo rebuilt-nothing
            cd /w && mkdir repo && cd repo
            git init -q -b main . && git config user.email t@example.test && git config user.name t
            cp -r /w/proj/src . && printf 'hello\n' > README && ln -s README readme-link
            git add -A && git commit -qm one
            echo more >> README && git status --porcelain
            git checkout -q -b feature && git commit -qam two && git checkout -q main
            printf 'new\n' > README.tmp && mv -f README.tmp README && git checkout -q -- README
            git gc -q && git status --porcelain && git log --oneline --all | wc -l
            """;
        var r = await home.RunAsync(["run", "--image", "debian-test:latest", "--no-network", "-v", $"{_folder.FullName}:/w:host_fs", "--", "bash", "-c", Script], timeout: TimeSpan.FromMinutes(5));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("sum=780\nrebuilt-nothing\n M README\n2\n", r.Stdout);
        Assert.True(File.Exists(Path.Combine(_folder.FullName, "proj", "app")));

        // The host's own git finds the repository the guest made valid and as the guest left it.
        var repo = Path.Combine(_folder.FullName, "repo");
        Assert.Equal("", await HostGit(repo, "fsck", "--strict", "--no-progress"));
        Assert.Equal("", await HostGit(repo, "status", "--porcelain"));
        Assert.Equal("feature\nmain\n", await HostGit(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads"));
        home.AssertNothingLeft();
    }

    private static async Task<string> HostGit(string repo, params string[] args)
    {
        var git = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("git", ["-c", $"safe.directory={repo}", "-C", repo, .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = git.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var errors = await git.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await git.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(git.ExitCode == 0, $"git {string.Join(' ', args)}: {errors}");
        return await output;
    }
}
