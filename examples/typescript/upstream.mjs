// A loopback HTTP upstream for the examples (also runnable on its own:
// `node upstream.mjs 18080`). Endpoints:
//   GET /echo  -> JSON {method, path, query, headers} of the request it got
//   GET /sse   -> text/event-stream: three `data: hello world` events
import { createServer } from "node:http";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { pathToFileURL } from "node:url";

export function startUpstream(port = 0, host = "127.0.0.1") {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream");
    if (url.pathname === "/echo") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          method: req.method,
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers: req.headers,
        }),
      );
      return;
    }
    if (url.pathname === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      let n = 0;
      const timer = setInterval(() => {
        n += 1;
        res.write(`data: hello world ${n}\n\n`);
        if (n === 3) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const address = server.address();
      resolve({ url: `http://${host}:${address.port}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/**
 * The upstream to use: $MATCHLOCK_EXAMPLE_UPSTREAM if set, else one started
 * here on 127.0.0.1. Returns {url, ip, port, close}.
 */
export async function exampleUpstream() {
  let url = process.env.MATCHLOCK_EXAMPLE_UPSTREAM;
  let close = async () => undefined;
  if (!url) {
    const started = await startUpstream();
    url = started.url;
    close = started.close;
  }
  const parsed = new URL(url);
  const hostname = parsed.hostname.replace(/^\[|\]$/g, "");
  const ip = isIP(hostname) ? hostname : (await lookup(hostname)).address;
  const port = Number(parsed.port || 80);
  return { url, ip, port, close };
}

/** The name the guest uses for the upstream (mapped to its IP with addHost). */
export const UPSTREAM_NAME = "upstream.matchlock.test";

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { url } = await startUpstream(Number(process.argv[2] ?? 18080));
  console.log(`upstream listening on ${url}`);
}
