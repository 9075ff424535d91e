// Contract conformance: every request the SDK sent to the fake server during
// the unit tests (test/.recordings/wire.jsonl, written by fake-matchlock.mjs)
// must match contract/rpc.json, and so must every result, notification and
// hook-callback message the fake exchanged with it: the client accepted
// exactly contract-shaped answers. Imported after unit.mjs by sdk.test.mjs,
// so its tests run once the unit tests have finished.
import { strict as assert } from "node:assert";
import { existsSync } from "node:fs";
import { before, describe, test } from "node:test";
import { CONTRACT_PATH, Validator, loadContract } from "./contract.mjs";
import { RECORD_FILE, readRecords } from "./helpers.mjs";

const contract = loadContract();
const validator = new Validator(contract);

describe("the validator itself", () => {
  test("loads contract/rpc.json from the repository root", () => {
    assert.ok(existsSync(CONTRACT_PATH), CONTRACT_PATH);
    assert.equal(contract.version, 1);
  });

  test("rejects what the contract does not allow", () => {
    const req = (method, params) => validator.checkRequest({ jsonrpc: "2.0", id: 1, method, params });
    assert.deepEqual(req("exec", { command: "ls" }), []);
    assert.deepEqual(req("exec", { command: ["ls", "-l"] }), []);
    assert.match(req("exec", {}).join(), /missing required field command/);
    assert.match(req("exec", { command: "ls", cwd: "/" }).join(), /field cwd is not in the contract/);
    assert.match(req("write_file", { path: "/x", content: "not base64!" }).join(), /base64/);
    assert.match(req("write_file", { path: "/x", content: "", mode: 4.5 }).join(), /expected integer/);
    assert.match(req("create", { image: "x", id: "vm-1" }).join(), /forbidden field id/);
    assert.match(req("create", { image: "x", network: { interception: { rules: [{ action: "deny" }] } } }).join(), /not in allow\|block\|mutate/);
    assert.match(req("nope", {}).join(), /unknown method/);
    assert.match(validator.checkRequest({ jsonrpc: "2.0", id: "7", method: "log" }).join(), /id must be an integer/);
  });
});

describe("recorded traffic", () => {
  let records = [];
  before(() => {
    records = readRecords();
  });

  test("the unit tests left a recording", () => {
    assert.ok(records.length > 0, `no recording at ${RECORD_FILE}: run the unit tests first (test/sdk.test.mjs does)`);
  });

  test("every request the SDK sent matches its method's params", () => {
    const problems = [];
    for (const { msg } of records.filter((r) => r.dir === "in")) {
      for (const p of validator.checkRequest(msg)) problems.push(`${JSON.stringify(msg).slice(0, 160)} -> ${p}`);
    }
    assert.deepEqual(problems, []);
  });

  test("every method of the contract was exercised", () => {
    const sent = new Set(records.filter((r) => r.dir === "in").map((r) => r.msg.method));
    const missing = Object.keys(contract.methods).filter((m) => !sent.has(m));
    assert.deepEqual(missing, []);
  });

  test("request ids are unique per process and never reused", () => {
    const seen = new Map();
    for (const { pid, msg } of records.filter((r) => r.dir === "in")) {
      const key = `${pid}:${msg.id}`;
      assert.ok(!seen.has(key), `id ${msg.id} reused in process ${pid}`);
      seen.set(key, true);
    }
  });

  test("every answer and notification the client accepted is contract-shaped", () => {
    const methodOf = new Map();
    for (const { pid, dir, msg } of records) {
      if (dir === "in") methodOf.set(`${pid}:${msg.id}`, msg.method);
    }
    const problems = [];
    for (const { pid, msg } of records.filter((r) => r.dir === "out")) {
      const found = validator.checkServerMessage(msg, (id) => methodOf.get(`${pid}:${id}`));
      for (const p of found) problems.push(`${JSON.stringify(msg).slice(0, 160)} -> ${p}`);
    }
    assert.deepEqual(problems, []);
    const notifications = new Set(records.filter((r) => r.dir === "out" && r.msg.method).map((r) => r.msg.method));
    assert.deepEqual(
      Object.keys(contract.notifications).filter((n) => !notifications.has(n)),
      [],
      "every notification kind was delivered to the client",
    );
  });

  test("hook callback requests and the SDK's replies match HookCallbackRequest / HookCallbackReply", () => {
    const requests = records.filter((r) => r.dir === "hook-request");
    const replies = records.filter((r) => r.dir === "hook-reply");
    assert.ok(requests.length > 0 && replies.length === requests.length);
    const problems = [
      ...requests.flatMap((r) => validator.checkHookRequest(r.msg)),
      ...replies.flatMap((r) => validator.checkHookReply(r.msg)),
    ];
    assert.deepEqual(problems, []);
  });
});
