// Shared set-up for the unit tests: the fake binary, its logs, and a client factory.
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const FAKE_BIN = join(here, "fake-matchlock.mjs");
export const RECORD_DIR = join(here, ".recordings");
export const RECORD_FILE = join(RECORD_DIR, "wire.jsonl");
export const CLI_LOG = join(RECORD_DIR, "cli.log");

mkdirSync(RECORD_DIR, { recursive: true });

export function readRecords(file = RECORD_FILE) {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** Requests the fake received (optionally only `method`), in order. */
export function received(method) {
  return readRecords()
    .filter((r) => r.dir === "in" && (method === undefined || r.msg.method === method))
    .map((r) => r.msg);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
