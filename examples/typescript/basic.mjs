// basic: secret injection. The guest only ever sees a placeholder in $API_KEY;
// the host's proxy swaps in the real value on requests to the allowed host.
//
//   MATCHLOCK_EXAMPLE_UPSTREAM=http://127.0.0.1:18080 node basic.mjs
import { Client, Sandbox } from "../../sdk/typescript/dist/index.js";
import { UPSTREAM_NAME, exampleUpstream } from "./upstream.mjs";

const SECRET = process.env.EXAMPLE_API_KEY ?? "sk-example-0123456789";
const upstream = await exampleUpstream();

const sandbox = new Sandbox("busybox")
  .addHost(UPSTREAM_NAME, upstream.ip) // the guest reaches the loopback upstream by this name
  .allowHost(UPSTREAM_NAME)
  // `http://` lets the secret travel over cleartext to this one host.
  .addSecret("API_KEY", SECRET, `http://${UPSTREAM_NAME}`);

const client = new Client();
let failed = false;
try {
  const id = await client.launch(sandbox);
  console.log(`sandbox ${id} is up`);

  const seen = (await client.exec("printf %s \"$API_KEY\"")).stdout;
  console.log(`inside the sandbox, $API_KEY = ${seen}`);
  if (seen.includes(SECRET) || !seen.startsWith("SANDBOX_SECRET_")) {
    throw new Error("the sandbox should see a placeholder, not the secret");
  }

  const target = `http://${UPSTREAM_NAME}:${upstream.port}/echo`;
  const result = await client.exec(`wget -q -O - --header "Authorization: Bearer $API_KEY" ${target}`);
  if (result.exitCode !== 0) {
    throw new Error(`wget failed (${result.exitCode}): ${result.stderr}`);
  }
  const echoed = JSON.parse(result.stdout);
  console.log(`the upstream received Authorization: ${echoed.headers.authorization}`);
  if (echoed.headers.authorization !== `Bearer ${SECRET}`) {
    throw new Error("the host should have injected the real value");
  }
  console.log("ok: placeholder inside, real value upstream");
} catch (error) {
  failed = true;
  console.error(`basic: ${error instanceof Error ? error.message : error}`);
} finally {
  await client.close();
  await client.remove().catch(() => undefined);
  await upstream.close();
}
process.exitCode = failed ? 1 : 0;
