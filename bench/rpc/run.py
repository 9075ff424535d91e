#!/usr/bin/env python3
"""bench/rpc: matchlock rpc beside the CLI, in the same run (see README.md).

1. exec round trip: `exec {command: "true"}` through one rpc process vs `matchlock exec ID -- true`
   into a `run -d` sandbox (a CLI process start each time, as a script would pay).
2. exec_stream of 100 MB (`head -c 100M /dev/zero`) through rpc (base64 notifications, decoded)
   vs the same command through `matchlock exec` with stdout to a pipe we drain.
3. launch to first exec: rpc start -> create -> first exec answered, vs `matchlock run --rm --image
   busybox -- true` (CLI start to exit).
Usage: bench/rpc/run.py [N=20]   (MATCHLOCK_BIN selects the binary; don't run beside tests)
"""
import base64, json, os, statistics, subprocess, sys, time

BIN = os.environ.get("MATCHLOCK_BIN", "matchlock")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
MB = 100


class Rpc:
    def __init__(self):
        self.p = subprocess.Popen([BIN, "rpc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # buffered: a raw pipe would readline byte by byte
        self.out = self.p.stdout
        self.next = 0

    def send(self, method, params=None):
        self.next += 1
        msg = {"jsonrpc": "2.0", "id": self.next, "method": method}
        if params is not None:
            msg["params"] = params
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()
        return self.next

    def call(self, method, params=None, on_note=None):
        rid = self.send(method, params)
        while True:
            line = self.out.readline()
            if not line:
                raise RuntimeError("rpc ended")
            msg = json.loads(line)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            if on_note:
                on_note(msg)

    def close(self):
        self.call("close", {"timeout_seconds": 2})
        self.p.stdin.close()
        self.p.wait(timeout=30)


def ms(seconds):
    return seconds * 1000


def median_p95(samples):
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, (95 * len(s) + 99) // 100 - 1)]


def main():
    # 3. launch to first exec (first, on a quiet machine), interleaved with `run`.
    launch, run = [], []
    for _ in range(max(3, N // 5)):
        t = time.perf_counter()
        rpc = Rpc()
        rpc.call("create", {"image": "busybox", "network": {"no_network": True}})
        rpc.call("exec", {"command": "true"})
        launch.append(time.perf_counter() - t)
        rpc.close()
        t = time.perf_counter()
        subprocess.run([BIN, "run", "--rm", "--no-network", "--image", "busybox", "--", "true"], check=True, stderr=subprocess.DEVNULL)
        run.append(time.perf_counter() - t)
        subprocess.run([BIN, "prune"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    rpc = Rpc()
    vm = rpc.call("create", {"image": "busybox", "network": {"no_network": True}})["id"]
    detached = subprocess.run([BIN, "run", "-d", "--no-network", "--image", "busybox"], check=True, capture_output=True, text=True).stdout.strip()
    try:
        for _ in range(3):  # warm-up: TCG translates the first execs
            rpc.call("exec", {"command": "true"})
            subprocess.run([BIN, "exec", detached, "--", "true"], check=True)
        via_rpc, via_cli = [], []
        for _ in range(N):
            t = time.perf_counter(); rpc.call("exec", {"command": ["true"]}); via_rpc.append(time.perf_counter() - t)
            t = time.perf_counter(); subprocess.run([BIN, "exec", detached, "--", "true"], check=True); via_cli.append(time.perf_counter() - t)

        stream_rpc, stream_cli = [], []
        for _ in range(3):
            got = [0]

            def note(msg):
                if msg.get("method") == "exec_stream.stdout":
                    got[0] += len(base64.b64decode(msg["params"]["data"]))

            t = time.perf_counter()
            rpc.call("exec_stream", {"command": f"head -c {MB * 1024 * 1024} /dev/zero"}, on_note=note)
            stream_rpc.append(MB / (time.perf_counter() - t))
            assert got[0] == MB * 1024 * 1024, got[0]
            t = time.perf_counter()
            cli = subprocess.run([BIN, "exec", detached, "--", "head", "-c", str(MB * 1024 * 1024), "/dev/zero"], check=True, stdout=subprocess.PIPE)
            stream_cli.append(MB / (time.perf_counter() - t))
            assert len(cli.stdout) == MB * 1024 * 1024
    finally:
        rpc.close()
        subprocess.run([BIN, "kill", detached], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([BIN, "rm", vm, detached], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    r50, r95 = median_p95(via_rpc)
    c50, c95 = median_p95(via_cli)
    print(f"exec true       rpc   median {ms(r50):6.1f} ms  p95 {ms(r95):6.1f} ms")
    print(f"                CLI   median {ms(c50):6.1f} ms  p95 {ms(c95):6.1f} ms   rpc - CLI = {ms(r50 - c50):+.1f} ms (target <= +2 ms)")
    s_r, s_c = statistics.median(stream_rpc), statistics.median(stream_cli)
    print(f"exec_stream {MB} MB  rpc {s_r:6.1f} MB/s   CLI {s_c:6.1f} MB/s   ratio {s_r / s_c:.2f} (target >= 0.8)")
    l, r = statistics.median(launch), statistics.median(run)
    print(f"launch -> first exec  rpc {ms(l):7.0f} ms   run --rm {ms(r):7.0f} ms   rpc - run = {ms(l - r):+.0f} ms (target <= +50 ms)")


if __name__ == "__main__":
    main()
