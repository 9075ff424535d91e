/**
 * A small path glob matcher for VFS hook rules (`path`), matching full guest
 * paths the way the original SDK's matcher does with dotfiles allowed:
 * `*` and `?` stay within one path segment, `**` crosses segments,
 * `[abc]` / `[!a-z]` are character classes and `{a,b}` are alternatives.
 */

const cache = new Map<string, RegExp>();

function escapeChar(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function translate(pattern: string): string {
  let out = "";
  let i = 0;
  let braceDepth = 0;
  while (i < pattern.length) {
    const ch = pattern[i];
    if (ch === "*") {
      if (pattern[i + 1] === "*") {
        // `**/` matches zero or more whole segments; a bare `**` anything.
        if (pattern[i + 2] === "/") {
          out += "(?:.*/)?";
          i += 3;
        } else {
          out += ".*";
          i += 2;
        }
      } else {
        out += "[^/]*";
        i += 1;
      }
      continue;
    }
    if (ch === "?") {
      out += "[^/]";
      i += 1;
      continue;
    }
    if (ch === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end === -1) {
        out += "\\[";
        i += 1;
        continue;
      }
      let body = pattern.slice(i + 1, end);
      let negate = false;
      if (body.startsWith("!") || body.startsWith("^")) {
        negate = true;
        body = body.slice(1);
      }
      body = body.replace(/\\/g, "\\\\").replace(/\]/g, "\\]");
      out += negate ? `[^/${body}]` : `[${body}]`;
      i = end + 1;
      continue;
    }
    if (ch === "{") {
      braceDepth += 1;
      out += "(?:";
      i += 1;
      continue;
    }
    if (ch === "}" && braceDepth > 0) {
      braceDepth -= 1;
      out += ")";
      i += 1;
      continue;
    }
    if (ch === "," && braceDepth > 0) {
      out += "|";
      i += 1;
      continue;
    }
    if (ch === "\\" && i + 1 < pattern.length) {
      out += escapeChar(pattern[i + 1]);
      i += 2;
      continue;
    }
    out += escapeChar(ch);
    i += 1;
  }
  while (braceDepth-- > 0) {
    out += ")";
  }
  return out;
}

/** True when `path` matches `pattern` as a whole. Malformed patterns match nothing. */
export function globMatch(pattern: string, path: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    try {
      re = new RegExp(`^${translate(pattern)}$`, "s");
    } catch {
      return false;
    }
    cache.set(pattern, re);
  }
  return re.test(path);
}
