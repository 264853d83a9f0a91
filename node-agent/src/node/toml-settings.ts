/**
 * Just enough TOML to read a runtime's switches out of its config files (containerd's
 * config.toml, CRI-O's crio.conf and drop-ins): every `key = value` whose value is a string, a
 * boolean, a number or a list of them, by its full dotted path, read line by line. Comments are
 * ignored, table headers (`[a.'b.c']`, `[[a]]`) and dotted keys make the path, lists may span
 * lines. Inline tables and multi-line strings are skipped (no switch that matters uses them).
 * This is no general TOML parser: it never fails, it only leaves out what it does not read.
 */

export type TomlValue = string | boolean | number | TomlValue[];

/** One setting: the path's segments (quotes removed) and its value. */
export interface TomlSetting {
  path: readonly string[];
  value: TomlValue;
}

/** Every setting the text holds, in file order (a later one of the same path wins, as in a drop-in). */
export function tomlSettings(text: string): TomlSetting[] {
  const settings: TomlSetting[] = [];
  let table: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = stripComment(lines[i]).trim();
    if (line === '') continue;
    if (line.startsWith('[')) {
      const header = /^\[\[?(.*?)\]\]?$/.exec(line);
      table = header === null ? [] : (parseKey(header[1]) ?? []);
      continue;
    }
    const eq = indexOutsideQuotes(line, '=');
    if (eq === -1) continue;
    const key = parseKey(line.slice(0, eq));
    let raw = line.slice(eq + 1).trim();
    if (raw.startsWith('"""') || raw.startsWith("'''")) {
      // A multi-line string: skip to its end, so its lines are not read as settings.
      const quote = raw.slice(0, 3);
      if (raw.indexOf(quote, 3) === -1) {
        while (i + 1 < lines.length) {
          i++;
          if (lines[i].includes(quote)) break;
        }
      }
      continue;
    }
    // A list may go on over the next lines until its brackets close.
    while (raw.startsWith('[') && bracketDepth(raw) > 0 && i + 1 < lines.length) {
      line = stripComment(lines[++i]).trim();
      raw += ` ${line}`;
    }
    const value = parseValue(raw);
    if (key !== undefined && value !== undefined) settings.push({ path: [...table, ...key], value });
  }
  return settings;
}

/** The text before a `#` that is not inside a string. */
function stripComment(line: string): string {
  const at = indexOutsideQuotes(line, '#');
  return at === -1 ? line : line.slice(0, at);
}

/** Each character of `text` outside '…' and "…" strings (a backslash escapes inside "…"), with its index. */
function* outsideQuotes(text: string): Generator<[number, string]> {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else {
      yield [i, c];
    }
  }
}

function indexOutsideQuotes(text: string, char: string): number {
  for (const [i, c] of outsideQuotes(text)) if (c === char) return i;
  return -1;
}

function bracketDepth(text: string): number {
  let depth = 0;
  for (const [, c] of outsideQuotes(text)) {
    if (c === '[') depth++;
    else if (c === ']') depth--;
  }
  return depth;
}

/** `a."b.c".d` → ['a', 'b.c', 'd']; undefined when it is no key. */
function parseKey(text: string): string[] | undefined {
  const segments: string[] = [];
  let rest = text.trim();
  while (rest !== '') {
    let segment: string;
    if (rest.startsWith('"') || rest.startsWith("'")) {
      const end = closingQuote(rest);
      if (end === -1) return undefined;
      segment = unquote(rest.slice(0, end + 1));
      rest = rest.slice(end + 1).trim();
    } else {
      const bare = /^[A-Za-z0-9_-]+/.exec(rest);
      if (bare === null) return undefined;
      segment = bare[0];
      rest = rest.slice(segment.length).trim();
    }
    segments.push(segment);
    if (rest === '') break;
    if (!rest.startsWith('.')) return undefined;
    rest = rest.slice(1).trim();
  }
  return segments.length === 0 ? undefined : segments;
}

/** Index of the quote closing the string that `text` starts with, or -1. */
function closingQuote(text: string): number {
  const quote = text[0];
  for (let i = 1; i < text.length; i++) {
    if (text[i] === '\\' && quote === '"') i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

function unquote(quoted: string): string {
  const inner = quoted.slice(1, -1);
  if (quoted.startsWith("'")) return inner;
  return inner.replace(/\\(["\\bfnrt])/g, (_, c: string) => ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' })[c] ?? c);
}

function parseValue(raw: string): TomlValue | undefined {
  const text = raw.trim();
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text.startsWith('"') || text.startsWith("'")) {
    const end = closingQuote(text);
    return end === -1 || text.slice(end + 1).trim() !== '' ? undefined : unquote(text.slice(0, end + 1));
  }
  if (text.startsWith('[')) return parseList(text);
  if (/^[+-]?\d[\d_]*(\.\d+)?$/.test(text)) return Number(text.replaceAll('_', ''));
  return undefined;
}

/** `["a", 'b', 1]` (a trailing comma allowed); undefined for nested lists or inline tables. */
function parseList(text: string): TomlValue[] | undefined {
  if (!text.endsWith(']')) return undefined;
  const items: TomlValue[] = [];
  let rest = text.slice(1, -1).trim();
  while (rest !== '') {
    let item: string;
    if (rest.startsWith('"') || rest.startsWith("'")) {
      const end = closingQuote(rest);
      if (end === -1) return undefined;
      item = rest.slice(0, end + 1);
    } else {
      const comma = rest.indexOf(',');
      item = comma === -1 ? rest : rest.slice(0, comma);
    }
    const value = parseValue(item);
    if (value === undefined || Array.isArray(value)) return undefined;
    items.push(value);
    rest = rest.slice(item.length).trim();
    if (rest.startsWith(',')) rest = rest.slice(1).trim();
    else if (rest !== '') return undefined;
  }
  return items;
}
