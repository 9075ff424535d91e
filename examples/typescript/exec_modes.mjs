// exec_modes: the four ways to run a command.
//   exec             buffered output
//   execStream       output chunks as they are produced
//   execPipe         stdin/stdout/stderr pipes (stdin from any (async) iterable or stream)
//   execInteractive  a PTY, with resize
//
//   node exec_modes.mjs
import { Client, Sandbox } from "../../sdk/typescript/dist/index.js";

const client = new Client();
let failed = false;
try {
  await client.launch(new Sandbox("busybox").withNoNetwork());

  const buffered = await client.exec("uname -s; echo to-stderr >&2");
  console.log(`exec: exit=${buffered.exitCode} stdout=${JSON.stringify(buffered.stdout)} stderr=${JSON.stringify(buffered.stderr)}`);

  const streamed = await client.execStream("for i in 1 2 3; do echo tick $i; sleep 0.2; done", {
    stdout: (chunk) => process.stdout.write(`  stream> ${chunk}`),
    stderr: process.stderr,
  });
  console.log(`execStream: exit=${streamed.exitCode} after ${streamed.durationMs} ms`);

  async function* lines() {
    for (const word of ["alpha", "beta", "gamma"]) {
      yield `${word}\n`;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const upper = [];
  const piped = await client.execPipe("tr a-z A-Z", { stdin: lines(), stdout: (c) => upper.push(c) });
  const text = Buffer.concat(upper).toString();
  console.log(`execPipe: exit=${piped.exitCode} output=${JSON.stringify(text)}`);
  if (text !== "ALPHA\nBETA\nGAMMA\n") throw new Error("execPipe output mismatch");

  const screen = [];
  const tty = await client.execInteractive("sh", {
    rows: 24,
    cols: 80,
    resize: [[40, 120]],
    stdin: ["stty size\n", "echo interactive-ok\n", "exit 0\n"],
    stdout: (c) => screen.push(c),
  });
  const shown = Buffer.concat(screen).toString();
  console.log(`execInteractive: exit=${tty.exitCode}`);
  process.stdout.write(shown.replace(/^/gm, "  tty> ") + "\n");
  if (!shown.includes("interactive-ok")) throw new Error("execInteractive output mismatch");
  console.log("ok: all four exec modes");
} catch (error) {
  failed = true;
  console.error(`exec_modes: ${error instanceof Error ? error.message : error}`);
} finally {
  await client.close();
  await client.remove().catch(() => undefined);
}
process.exitCode = failed ? 1 : 0;
