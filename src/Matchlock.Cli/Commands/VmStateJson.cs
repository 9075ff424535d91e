using System.Text.Json;
using Matchlock.Core.State;

namespace Matchlock.Cli.Commands;

/// <summary>
/// The JSON of <c>get</c> and <c>inspect</c>/<c>stat</c> (docs/COMPATIBILITY.md "CLI"). <c>get</c> is the
/// original's VM state: <c>id</c>, <c>pid</c>, <c>status</c>, <c>image</c>, <c>created_at</c> and
/// <c>config</c> (secrets by name only), plus ours: <c>reason</c>, <c>hostname</c>, <c>vm_dir</c>.
/// <c>inspect</c> is <c>{vm, lifecycle, history}</c>: <c>vm</c> as <c>get</c>; <c>lifecycle</c> the
/// phase with its times and (ours) what the VM holds, from state.db (docs/ARCHITECTURE.md D9);
/// <c>history</c> every transition.
/// </summary>
internal static class VmStateJson
{
    private static readonly JsonWriterOptions Options = new() { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteGet(VmRecord vm) => Write(json => WriteVm(json, vm));

    public static void WriteInspect(VmStateStore store, VmRecord vm)
    {
        var history = store.History(vm.Id);
        Write(json =>
        {
            json.WriteStartObject();
            json.WritePropertyName("vm");
            WriteVm(json, vm);

            json.WriteStartObject("lifecycle");
            json.WriteString("vm_id", vm.Id);
            json.WriteString("phase", vm.Status.Name());
            json.WriteString("recorded_phase", vm.RecordedStatus.Name());
            json.WriteString("created_at", vm.Created);
            if (history.Count > 0)
            {
                json.WriteString("updated_at", history[^1].Time);
            }

            if (vm.Reason is { } reason)
            {
                json.WriteString("last_error", reason);
            }

            json.WriteNumber("owner_pid", vm.OwnerPid);
            json.WriteString("owner_start_time", vm.OwnerStartTime);
            json.WriteStartArray("resources");
            foreach (var r in store.Resources(vm.Id))
            {
                json.WriteStartObject();
                json.WriteString("kind", VmStateStore.ResourceKindName(r.Kind));
                json.WriteString("value", r.Value);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();

            json.WriteStartArray("history");
            foreach (var e in history)
            {
                json.WriteStartObject();
                json.WriteString("status", e.Status.Name());
                json.WriteString("time", e.Time);
                if (e.Reason is { } why)
                {
                    json.WriteString("reason", why);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        });
    }

    private static void WriteVm(Utf8JsonWriter json, VmRecord vm)
    {
        json.WriteStartObject();
        json.WriteString("id", vm.Id);
        json.WriteNumber("pid", vm.OwnerPid);
        json.WriteString("status", vm.Status.Name());
        json.WriteString("image", vm.Image);
        json.WriteString("created_at", vm.Created);
        json.WritePropertyName("config");
        (VmConfig.TryRead(vm.VmDir) ?? VmConfig.FromRecord(vm)).WriteTo(json);
        if (vm.Reason is { } reason)
        {
            json.WriteString("reason", reason);
        }

        json.WriteString("hostname", vm.Hostname);
        json.WriteString("vm_dir", vm.VmDir);
        json.WriteEndObject();
    }

    private static void Write(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout, Options))
        {
            body(json);
        }

        stdout.Write("\n"u8);
    }
}
