/** Small helpers shared by the client modules (not exported from the package). */
import { isIP } from "node:net";
import { MatchlockError } from "./errors.js";
import type { BinaryLike, Config, HostIPMapping, StreamWriter } from "./types.js";

export type JSONValue = null | boolean | number | string | JSONObject | JSONValue[];
export type JSONObject = { [key: string]: JSONValue };

export const DEFAULT_CPUS = 1;
export const DEFAULT_MEMORY_MB = 512;
export const DEFAULT_DISK_SIZE_MB = 5120;
export const DEFAULT_TIMEOUT_SECONDS = 300;
export const DEFAULT_CLOSE_TIMEOUT_SECONDS = 2;
/** The server refuses lines longer than this (contract/rpc.json `max_line_bytes`). */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

export function defaultConfig(config: Config = {}): Required<Config> {
  return {
    binaryPath: config.binaryPath ?? process.env.MATCHLOCK_BIN ?? "matchlock",
    useSudo: config.useSudo ?? false,
  };
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

export function toBuffer(content: BinaryLike): Buffer {
  if (typeof content === "string") return Buffer.from(content, "utf8");
  if (Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  if (content instanceof ArrayBuffer) return Buffer.from(content);
  throw new MatchlockError("unsupported content type");
}

export function asObject(value: JSONValue | undefined): JSONObject {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

export function asNumber(value: JSONValue | undefined, fallback = 0): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

export function asString(value: JSONValue | undefined, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

export function asStringList(value: JSONValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((x): x is string => typeof x === "string") : [];
}

export function fromBase64(value: JSONValue | undefined): Buffer {
  return Buffer.from(asString(value), "base64");
}

export function validateAddHost(mapping: HostIPMapping): void {
  const host = mapping.host ?? "";
  const ip = (mapping.ip ?? "").trim();
  if (!host.trim()) {
    throw new MatchlockError("invalid add-host mapping: empty host");
  }
  if (/\s/.test(host)) {
    throw new MatchlockError(`invalid add-host mapping: host ${JSON.stringify(host)} contains whitespace`);
  }
  if (host.includes(":")) {
    throw new MatchlockError(`invalid add-host mapping: host ${JSON.stringify(host)} must not contain ':'`);
  }
  if (!ip) {
    throw new MatchlockError("invalid add-host mapping: empty ip");
  }
  if (isIP(ip) === 0) {
    throw new MatchlockError(`invalid add-host mapping: invalid ip ${JSON.stringify(mapping.ip)}`);
  }
}

/** Delivers one output chunk to a writer (a stream or a callback); never throws. */
export function deliver(writer: StreamWriter | undefined, chunk: Buffer): void {
  if (!writer || chunk.length === 0) {
    return;
  }
  try {
    if (typeof writer === "function") {
      const pending = writer(chunk);
      if (pending && typeof (pending as Promise<void>).catch === "function") {
        (pending as Promise<void>).catch(() => undefined);
      }
      return;
    }
    writer.write(chunk);
  } catch {
    // A failing sink must not break the reader loop.
  }
}
