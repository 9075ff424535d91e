using System.Text;
using Matchlock.Protocol.Messages;

namespace Matchlock.Protocol.Tests;

public sealed class ProtocolSerializerTests
{
    [Fact]
    public void Exec_request_round_trips_with_its_op()
    {
        var request = new ExecRequest { Argv = ["sh", "-c", "echo hi"], Env = ["A=1"], WorkingDir = "/w", User = "1000:1000", Tty = true, Rows = 40, Cols = 120, Stdin = true };
        var json = ProtocolSerializer.Serialize(request);
        Assert.StartsWith("{\"op\":\"exec\"", Encoding.UTF8.GetString(json), StringComparison.Ordinal);

        var back = Assert.IsType<ExecRequest>(ProtocolSerializer.ReadRequest(json));
        Assert.Equal(request.Argv, back.Argv);
        Assert.Equal(request.Env, back.Env);
        Assert.Equal((request.WorkingDir, request.User, request.Tty, request.Rows, request.Cols, request.Stdin), (back.WorkingDir, back.User, back.Tty, back.Rows, back.Cols, back.Stdin));
    }

    [Fact]
    public void Controls_round_trip()
    {
        Assert.Equal(new ResizeControl(50, 132), ProtocolSerializer.ReadControl(ProtocolSerializer.Serialize(new ResizeControl(50, 132))));
        Assert.Equal(new SignalControl(2), ProtocolSerializer.ReadControl(ProtocolSerializer.Serialize(new SignalControl(2))));
        Assert.Equal(new CancelControl(5000), ProtocolSerializer.ReadControl(ProtocolSerializer.Serialize(new CancelControl(5000))));
    }

    [Fact]
    public void Configure_request_keeps_hosts_and_cpu_quota()
    {
        var request = new ConfigureRequest { Hostname = "vm-1", UnixTimeMs = 42, Hosts = [new HostEntry("db", "10.0.0.2")], DnsServers = ["1.1.1.1"], CpuMax = "50000 100000" };
        var back = Assert.IsType<ConfigureRequest>(ProtocolSerializer.ReadRequest(ProtocolSerializer.Serialize(request)));
        Assert.Equal("vm-1", back.Hostname);
        Assert.Equal("db", back.Hosts[0].Name);
        Assert.Equal("50000 100000", back.CpuMax);
    }

    [Fact]
    public void Configure_request_carries_disks_in_order_with_snake_case_fields()
    {
        var request = new ConfigureRequest { Hostname = "vm-1", Disks = [new GuestDisk("mldisk1", "/mnt/a", false), new GuestDisk("mldisk0", "/mnt/a/b", true)] };
        var json = Encoding.UTF8.GetString(ProtocolSerializer.Serialize(request));
        Assert.Contains("\"disks\":[{\"serial\":\"mldisk1\",\"path\":\"/mnt/a\",\"read_only\":false}", json, StringComparison.Ordinal);
        var back = Assert.IsType<ConfigureRequest>(ProtocolSerializer.ReadRequest(ProtocolSerializer.Serialize(request)));
        Assert.Equal(request.Disks, back.Disks);

        // A host that sends no disks: the source-generated reader sets a missing init-only list to
        // null (not its initializer), so the guest must read "null" as "nothing to mount".
        var old = Assert.IsType<ConfigureRequest>(ProtocolSerializer.ReadRequest("{\"op\":\"configure\",\"hostname\":\"vm-1\"}"u8.ToArray()));
        Assert.True(old.Disks is null || old.Disks.Count == 0);
    }

    [Fact]
    public void Vfs_mount_request_round_trips_with_snake_case_fields()
    {
        var request = new VfsMountRequest { MountId = "ws", Path = "/workspace", ReadOnly = true };
        var json = Encoding.UTF8.GetString(ProtocolSerializer.Serialize(request));
        Assert.Equal("{\"op\":\"vfs_mount\",\"mount_id\":\"ws\",\"path\":\"/workspace\",\"read_only\":true}", json);
        Assert.Equal(request, ProtocolSerializer.ReadRequest(Encoding.UTF8.GetBytes(json)));

        // read_only may be left out: a writable mount.
        var writable = Assert.IsType<VfsMountRequest>(ProtocolSerializer.ReadRequest("{\"op\":\"vfs_mount\",\"mount_id\":\"a\",\"path\":\"/a\"}"u8.ToArray()));
        Assert.False(writable.ReadOnly);
    }

    [Fact]
    public void Unknown_op_is_a_protocol_error_not_a_crash()
    {
        var ex = Assert.Throws<MuxProtocolException>(() => ProtocolSerializer.ReadRequest("{\"op\":\"format_disk\"}"u8.ToArray()));
        Assert.Contains("GuestRequest", ex.Message, StringComparison.Ordinal);
        Assert.Throws<MuxProtocolException>(() => ProtocolSerializer.ReadReply("not json"u8.ToArray()));
    }

    [Fact]
    public void Reply_omits_null_fields()
    {
        var json = Encoding.UTF8.GetString(ProtocolSerializer.Serialize(new GuestReply { ExitCode = 3 }));
        Assert.Equal("{\"ok\":true,\"exit_code\":3}", json);
    }
}
