// network_interception: rewrite traffic on the host, outside the sandbox.
//   - a static `before` rule sets a request header,
//   - a static `after` rule sets a response header and rewrites an SSE body
//     line by line as it streams,
//   - a callback hook (a function in this process, called over a UNIX socket)
//     adds a request header and a query parameter.
//
//   MATCHLOCK_EXAMPLE_UPSTREAM=http://127.0.0.1:18080 node network_interception.mjs
import { Client, Sandbox } from "../../sdk/typescript/dist/index.js";
import { UPSTREAM_NAME, exampleUpstream } from "./upstream.mjs";

const upstream = await exampleUpstream();
const calls = [];

const sandbox = new Sandbox("busybox")
  .addHost(UPSTREAM_NAME, upstream.ip)
  .allowHost(UPSTREAM_NAME)
  .withNetworkInterception({
    rules: [
      { phase: "before", hosts: [UPSTREAM_NAME], setHeaders: { "X-Injected": "by-rule" } },
      {
        phase: "after",
        hosts: [UPSTREAM_NAME],
        path: "/sse",
        setResponseHeaders: { "X-Intercepted": "true" },
        bodyReplacements: [{ find: "world", replace: "matchlock" }],
      },
      {
        name: "tag-requests",
        phase: "before",
        hosts: [UPSTREAM_NAME],
        timeoutMs: 2000,
        hook: async (request) => {
          calls.push(`${request.method} ${request.path}`);
          // headers/query replace the whole map: start from what came in.
          return {
            request: {
              headers: { ...request.requestHeaders, "X-Hook": ["called"] },
              query: { ...request.query, tagged: "1" },
            },
          };
        },
      },
    ],
  });

const client = new Client();
let failed = false;
try {
  await client.launch(sandbox);
  const base = `http://${UPSTREAM_NAME}:${upstream.port}`;

  const echo = await client.exec(`wget -q -O - ${base}/echo`);
  if (echo.exitCode !== 0) throw new Error(`wget /echo failed: ${echo.stderr}`);
  const seen = JSON.parse(echo.stdout);
  console.log(`upstream saw X-Injected=${seen.headers["x-injected"]} X-Hook=${seen.headers["x-hook"]} query=${JSON.stringify(seen.query)}`);
  if (seen.headers["x-injected"] !== "by-rule" || seen.headers["x-hook"] !== "called" || seen.query.tagged !== "1") {
    throw new Error("request mutations missing");
  }

  const sse = await client.exec(`wget -q -S -O - ${base}/sse 2>&1`);
  console.log(sse.stdout.trim().replace(/^/gm, "  sse> "));
  if (!/x-intercepted: true/i.test(sse.stdout) || !sse.stdout.includes("data: hello matchlock 3")) {
    throw new Error("response mutations missing");
  }
  console.log(`callback hook ran for: ${calls.join(", ")}`);
  console.log("ok: headers, SSE body transform and callback hook");
} catch (error) {
  failed = true;
  console.error(`network_interception: ${error instanceof Error ? error.message : error}`);
} finally {
  await client.close();
  await client.remove().catch(() => undefined);
  await upstream.close();
}
process.exitCode = failed ? 1 : 0;
