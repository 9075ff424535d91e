// port_forward: serve HTTP from inside the sandbox (busybox httpd) and reach it
// from the host through a forwarded loopback port.
//
//   node port_forward.mjs            (MATCHLOCK_EXAMPLE_PORT picks the host port)
import { createServer } from "node:net";
import { Client, Sandbox } from "../../sdk/typescript/dist/index.js";

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const localPort = Number(process.env.MATCHLOCK_EXAMPLE_PORT ?? (await freePort()));
const client = new Client();
let failed = false;
try {
  await client.launch(new Sandbox("busybox"));
  await client.writeFile("/srv/www/index.html", "<h1>hello from the sandbox</h1>\n");
  const started = await client.exec("httpd -p 8080 -h /srv/www"); // daemonizes
  if (started.exitCode !== 0) throw new Error(`httpd failed: ${started.stderr}`);

  const bindings = await client.portForward(`${localPort}:8080`);
  for (const b of bindings) console.log(`forwarding ${b.address}:${b.localPort} -> guest :${b.remotePort}`);

  let body = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      body = await (await fetch(`http://127.0.0.1:${localPort}/`)).text();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 250)); // httpd may still be starting
    }
  }
  console.log(`GET http://127.0.0.1:${localPort}/ -> ${body.trim()}`);
  if (!body.includes("hello from the sandbox")) throw new Error("unexpected body");
  console.log("ok: port forward");
} catch (error) {
  failed = true;
  console.error(`port_forward: ${error instanceof Error ? error.message : error}`);
} finally {
  await client.close();
  await client.remove().catch(() => undefined);
}
process.exitCode = failed ? 1 : 0;
