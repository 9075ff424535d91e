/**
 * VFS interception: the rules that go to the server (`vfs.interception`) and
 * the hooks that run here, in the SDK process.
 *
 * - `hook` / `dangerousHook` (phase `after`) run when an `event` notification
 *   with a matching `file` part arrives; the SDK then asks the server to emit
 *   events (`emit_events: true`). Safe hooks run one event at a time and
 *   events arriving while one runs are dropped (so a hook that touches files
 *   cannot loop); dangerous hooks run for every event and get the client.
 * - `actionHook` / `mutateHook` (phase `before`) gate and rewrite the SDK's own
 *   `writeFile` / `readFile` / `listFiles` calls before they are sent.
 */
import { MatchlockError } from "./errors.js";
import { globMatch } from "./glob.js";
import type {
  BinaryLike,
  VFSActionRequest,
  VFSHookAction,
  VFSHookEvent,
  VFSHookRule,
  VFSInterceptionConfig,
  VFSMutateRequest,
} from "./types.js";
import { asNumber, asObject, asString, toBuffer, type JSONObject } from "./util.js";

export interface WireVFSRule {
  action: string;
  name?: string;
  phase?: string;
  ops?: string[];
  path?: string;
  timeout_ms?: number;
}

export interface WireVFSInterception {
  emit_events?: boolean;
  rules?: WireVFSRule[];
}

interface Matcher {
  name: string;
  ops: Set<string>;
  path: string;
}

interface EventHook extends Matcher {
  timeoutMs: number;
  dangerous: boolean;
  run: (client: unknown, event: VFSHookEvent) => Promise<void>;
}

interface MutateHook extends Matcher {
  run: (request: VFSMutateRequest) => Promise<BinaryLike | null | undefined>;
}

interface ActionHook extends Matcher {
  run: (request: VFSActionRequest) => Promise<VFSHookAction>;
}

export interface CompiledVFS {
  wire: WireVFSInterception | undefined;
  eventHooks: EventHook[];
  mutateHooks: MutateHook[];
  actionHooks: ActionHook[];
}

const lower = (value: unknown): string => String(value ?? "").trim().toLowerCase();

function matcher(rule: VFSHookRule): Matcher {
  return {
    name: rule.name ?? "",
    ops: new Set((rule.ops ?? []).map((op) => op.toLowerCase())),
    path: rule.path ?? "",
  };
}

function matches(m: Matcher, op: string, path: string): boolean {
  if (m.ops.size > 0 && !m.ops.has(op.toLowerCase())) {
    return false;
  }
  return !m.path || globMatch(m.path, path);
}

function ruleError(rule: VFSHookRule, why: string): MatchlockError {
  return new MatchlockError(`invalid vfs hook ${JSON.stringify(rule.name ?? "")}: ${why}`);
}

function requireAllowAction(rule: VFSHookRule, label: string): void {
  const action = lower(rule.action);
  if (action && action !== "allow") {
    throw ruleError(rule, `${label} cannot set action=${JSON.stringify(rule.action)}`);
  }
}

function requirePhase(rule: VFSHookRule, label: string, phase: "before" | "after", optional: boolean): void {
  const actual = lower(rule.phase);
  if ((optional && !actual) || actual === phase) {
    return;
  }
  throw ruleError(rule, `${label} must use phase=${phase}`);
}

export function compileVFS(config: VFSInterceptionConfig | undefined): CompiledVFS {
  const compiled: CompiledVFS = { wire: undefined, eventHooks: [], mutateHooks: [], actionHooks: [] };
  if (!config) {
    return compiled;
  }
  const wireRules: WireVFSRule[] = [];
  for (const rule of config.rules ?? []) {
    const callbacks = [rule.hook, rule.dangerousHook, rule.mutateHook, rule.actionHook].filter(Boolean).length;
    if (callbacks > 1) {
      throw ruleError(rule, "cannot set more than one callback hook");
    }
    if (callbacks === 0) {
      const action = lower(rule.action) || "allow";
      if (action === "mutate_write") {
        throw ruleError(rule, "mutate_write requires mutate_hook callback");
      }
      const wire: WireVFSRule = { action };
      if (rule.name) wire.name = rule.name;
      if (rule.phase) wire.phase = rule.phase;
      if (rule.ops && rule.ops.length > 0) wire.ops = [...rule.ops];
      if (rule.path) wire.path = rule.path;
      if ((rule.timeoutMs ?? 0) > 0) wire.timeout_ms = Math.trunc(rule.timeoutMs ?? 0);
      wireRules.push(wire);
      continue;
    }
    if (rule.hook || rule.dangerousHook) {
      const label = rule.hook ? "callback hooks" : "dangerous_hook";
      requireAllowAction(rule, label);
      requirePhase(rule, label, "after", false);
      const hook = rule.hook;
      const dangerous = rule.dangerousHook;
      compiled.eventHooks.push({
        ...matcher(rule),
        timeoutMs: rule.timeoutMs ?? 0,
        dangerous: Boolean(dangerous),
        run: async (client, event) => {
          if (hook) {
            await hook(event);
          } else if (dangerous) {
            await dangerous(client as never, event);
          }
        },
      });
      continue;
    }
    if (rule.actionHook) {
      requireAllowAction(rule, "action_hook");
      requirePhase(rule, "action_hook", "before", true);
      const fn = rule.actionHook;
      compiled.actionHooks.push({ ...matcher(rule), run: async (req) => (await fn(req)) ?? "allow" });
      continue;
    }
    const fn = rule.mutateHook!;
    requireAllowAction(rule, "mutate_hook");
    requirePhase(rule, "mutate_hook", "before", true);
    compiled.mutateHooks.push({ ...matcher(rule), run: async (req) => fn(req) });
  }

  const emitEvents = config.emitEvents === true || compiled.eventHooks.length > 0;
  if (emitEvents || wireRules.length > 0) {
    compiled.wire = {};
    if (emitEvents) compiled.wire.emit_events = true;
    if (wireRules.length > 0) compiled.wire.rules = wireRules;
  }
  return compiled;
}

function currentIds(): { uid: number; gid: number } {
  return {
    uid: typeof process.geteuid === "function" ? process.geteuid() : 0,
    gid: typeof process.getegid === "function" ? process.getegid() : 0,
  };
}

/** The local half of VFS interception, installed after a successful `create`. */
export class LocalVFSHooks {
  private hooks: CompiledVFS = { wire: undefined, eventHooks: [], mutateHooks: [], actionHooks: [] };
  private safeHookRunning = false;

  install(compiled: CompiledVFS): void {
    this.hooks = compiled;
    this.safeHookRunning = false;
  }

  clear(): void {
    this.install({ wire: undefined, eventHooks: [], mutateHooks: [], actionHooks: [] });
  }

  /** Throws when an action hook blocks the operation. */
  async checkAction(op: string, path: string, size: number, mode: number): Promise<void> {
    const request: VFSActionRequest = { op, path, size, mode, ...currentIds() };
    for (const hook of this.hooks.actionHooks) {
      if (!matches(hook, op, path)) continue;
      const decision = lower(await hook.run(request));
      if (decision === "" || decision === "allow") continue;
      if (decision === "block") {
        throw new MatchlockError(
          `vfs action hook blocked operation: op=${op} path=${path} hook=${JSON.stringify(hook.name)}`,
        );
      }
      throw new MatchlockError(
        `invalid action_hook return value for ${JSON.stringify(hook.name)}: expected "allow"|"block", got ${JSON.stringify(decision)}`,
      );
    }
  }

  /** Applies the mutate hooks, in order, to content about to be written. */
  async mutateWrite(path: string, content: Buffer, mode: number): Promise<Buffer> {
    let current = content;
    for (const hook of this.hooks.mutateHooks) {
      if (!matches(hook, "write", path)) continue;
      const replaced = await hook.run({ path, size: current.length, mode, ...currentIds() });
      if (replaced === null || replaced === undefined) continue;
      try {
        current = toBuffer(replaced);
      } catch {
        throw new MatchlockError(
          `invalid mutate_hook return type for ${JSON.stringify(hook.name)}: expected bytes|string|undefined`,
        );
      }
    }
    return current;
  }

  /** Handles the `params` of an `event` notification. */
  onEvent(params: JSONObject, client: unknown): void {
    const file = asObject(params.file);
    const op = asString(file.op).toLowerCase();
    if (!op || this.hooks.eventHooks.length === 0) {
      return;
    }
    const event: VFSHookEvent = {
      op,
      path: asString(file.path),
      size: asNumber(file.size),
      mode: asNumber(file.mode),
      uid: asNumber(file.uid),
      gid: asNumber(file.gid),
    };
    const safe: EventHook[] = [];
    for (const hook of this.hooks.eventHooks) {
      if (!matches(hook, op, event.path)) continue;
      if (hook.dangerous) {
        void runBounded(hook, client, event);
      } else {
        safe.push(hook);
      }
    }
    if (safe.length === 0 || this.safeHookRunning) {
      return;
    }
    this.safeHookRunning = true;
    void (async () => {
      try {
        for (const hook of safe) {
          await runBounded(hook, client, event);
        }
      } finally {
        this.safeHookRunning = false;
      }
    })();
  }
}

async function runBounded(hook: EventHook, client: unknown, event: VFSHookEvent): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const run = hook.run(client, event);
    if (hook.timeoutMs > 0) {
      await Promise.race([run, new Promise<void>((resolve) => (timer = setTimeout(resolve, hook.timeoutMs)))]);
    } else {
      await run;
    }
  } catch {
    // After-hooks are best effort: a failing hook never fails the sandbox.
  } finally {
    if (timer) clearTimeout(timer);
  }
}
