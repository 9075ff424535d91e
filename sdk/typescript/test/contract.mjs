// Validates JSON values against contract/rpc.json (notation: contract/README.md).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: sdk/typescript/test -> ../../.. */
export const REPO_ROOT = join(here, "..", "..", "..");
export const CONTRACT_PATH = join(REPO_ROOT, "contract", "rpc.json");

export function loadContract(path = CONTRACT_PATH) {
  return JSON.parse(readFileSync(path, "utf8"));
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Splits `A|B` at top level (outside <...>). */
function splitUnion(type) {
  const parts = [];
  let depth = 0;
  let current = "";
  for (const ch of type) {
    if (ch === "<") depth++;
    if (ch === ">") depth--;
    if (ch === "|" && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

export class Validator {
  constructor(contract = loadContract()) {
    this.contract = contract;
  }

  /** Returns a list of problems (empty when `value` has type `type`). */
  checkType(type, value, path = "$") {
    const alternatives = splitUnion(type);
    if (alternatives.length > 1) {
      const failures = alternatives.map((t) => this.checkType(t, value, path));
      return failures.some((f) => f.length === 0) ? [] : [`${path}: not any of ${type}: ${failures.flat().join("; ")}`];
    }
    if (type.startsWith("array<")) {
      if (!Array.isArray(value)) return [`${path}: expected array, got ${JSON.stringify(value)}`];
      const inner = type.slice(6, -1);
      return value.flatMap((item, i) => this.checkType(inner, item, `${path}[${i}]`));
    }
    if (type.startsWith("map<")) {
      if (!isPlainObject(value)) return [`${path}: expected object (map), got ${JSON.stringify(value)}`];
      const inner = type.slice(4, -1);
      return Object.entries(value).flatMap(([k, v]) => this.checkType(inner, v, `${path}.${k}`));
    }
    if (type.startsWith("#")) {
      const def = this.contract.types[type.slice(1)];
      if (!def) return [`${path}: unknown type ${type}`];
      return this.checkFields(def, value, path);
    }
    switch (type) {
      case "string":
        return typeof value === "string" ? [] : [`${path}: expected string, got ${JSON.stringify(value)}`];
      case "integer":
        return Number.isInteger(value) ? [] : [`${path}: expected integer, got ${JSON.stringify(value)}`];
      case "number":
        return typeof value === "number" && Number.isFinite(value) ? [] : [`${path}: expected number, got ${JSON.stringify(value)}`];
      case "boolean":
        return typeof value === "boolean" ? [] : [`${path}: expected boolean, got ${JSON.stringify(value)}`];
      case "object":
        return isPlainObject(value) ? [] : [`${path}: expected object, got ${JSON.stringify(value)}`];
      case "base64":
        if (typeof value !== "string" || !BASE64.test(value)) return [`${path}: expected standard base64, got ${JSON.stringify(value)?.slice(0, 80)}`];
        return Buffer.from(value, "base64").toString("base64") === value ? [] : [`${path}: base64 does not round-trip`];
      default:
        return [`${path}: unknown contract type ${type}`];
    }
  }

  /** `def` is `{fields, forbidden?}`. */
  checkFields(def, value, path = "$") {
    if (!isPlainObject(value)) return [`${path}: expected object, got ${JSON.stringify(value)}`];
    const problems = [];
    const fields = def.fields ?? {};
    for (const [name, spec] of Object.entries(fields)) {
      if (spec.required && !(name in value)) problems.push(`${path}: missing required field ${name}`);
    }
    for (const [name, v] of Object.entries(value)) {
      const spec = fields[name];
      if ((def.forbidden ?? []).includes(name)) {
        problems.push(`${path}: forbidden field ${name}`);
        continue;
      }
      if (!spec) {
        problems.push(`${path}: field ${name} is not in the contract`);
        continue;
      }
      problems.push(...this.checkType(spec.type, v, `${path}.${name}`));
      if (spec.enum && !spec.enum.includes(v)) problems.push(`${path}.${name}: ${JSON.stringify(v)} not in ${spec.enum.join("|")}`);
    }
    return problems;
  }

  paramsDef(method) {
    const m = this.contract.methods[method];
    if (!m) return undefined;
    return typeof m.params === "string" ? this.contract.types[m.params.slice(1)] : m.params;
  }

  /** Problems with one request line the SDK sent. */
  checkRequest(message) {
    const problems = [];
    if (message.jsonrpc !== "2.0") problems.push(`jsonrpc must be "2.0"`);
    if (!Number.isInteger(message.id)) problems.push(`request id must be an integer, got ${JSON.stringify(message.id)}`);
    const def = this.paramsDef(message.method);
    if (!def) return [...problems, `unknown method ${JSON.stringify(message.method)}`];
    const params = message.params === undefined ? {} : message.params;
    problems.push(...this.checkFields(def, params, `${message.method}.params`));
    return problems;
  }

  /** Problems with one line the server wrote (response or notification). */
  checkServerMessage(message, methodOfId) {
    if (typeof message.id === "number") {
      if (message.error) {
        const e = message.error;
        return Number.isInteger(e.code) && typeof e.message === "string" ? [] : [`error must have integer code and string message`];
      }
      const method = methodOfId(message.id);
      const m = this.contract.methods[method];
      if (!m) return [`response to unknown method ${method}`];
      if (!m.result) return [`method ${method} is never answered, but a result came`];
      return this.checkFields(m.result, message.result, `${method}.result`);
    }
    const def = this.contract.notifications[message.method];
    if (!def) return [`unknown notification ${message.method}`];
    return this.checkFields(def, message.params, `${message.method}.params`);
  }

  checkHookRequest(value) {
    return this.checkFields(this.contract.types.HookCallbackRequest, value, "HookCallbackRequest");
  }

  checkHookReply(value) {
    return this.checkFields(this.contract.types.HookCallbackReply, value, "HookCallbackReply");
  }
}
