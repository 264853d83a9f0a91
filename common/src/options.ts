/**
 * Command-line flags and environment variables, declared once with their defaults and help text,
 * and read the same way by every Cryo process (node:util parseArgs under the spec table).
 * A flag wins over its env var, which wins over the default. A boolean flag alone means true,
 * `--no-<flag>` false, `--<flag>=false` too. Bad values fail at start with a message naming the
 * flag, the env var and the expected form.
 *
 * Imports nothing heavy (not the Kubernetes client): `@cryo/common/options` loads in a few
 * milliseconds, for a command that wants to refuse bad arguments at once.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_HOST_HOOKS_DIR } from './hook-socket.ts';

export interface OptionSpec<T> {
  /** `--tls-secret-name` */
  flag: string;
  /** `CRYO_TLS_SECRET_NAME`; none for a flag only a command line sets (local mode's `--stop`). */
  env?: string;
  default: T;
  description: string;
  parse: (raw: string) => T;
  /**
   * How a value reads in --help, the docs and the start log when the plain value would read
   * badly: a duration as `2m` (formatDuration), a size as `4Mi` (formatByteSize), a file mode as `0666`.
   */
  format?(value: T): string;
  /** How the default reads when it stands for something the value does not say: `(the host name)`, `0 (no limit)`. */
  defaultText?: string;
}

export type OptionSpecs = Record<string, OptionSpec<unknown>>;

export class OptionError extends Error {
  override name = 'OptionError';
}

export const parseString = (raw: string): string => raw;

export function parseInteger(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new OptionError(`expected a whole number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  };
}

export function parseBoolean(raw: string): boolean {
  if (['true', '1', 'yes'].includes(raw)) return true;
  if (['false', '0', 'no'].includes(raw)) return false;
  throw new OptionError(`expected true or false, got "${raw}"`);
}

/** An absolute path: a daemon may be started from any directory, so a relative one would mean whatever its cwd is. */
export function parseAbsolutePath(raw: string): string {
  if (!raw.startsWith('/')) throw new OptionError(`expected an absolute path, got "${raw}"`);
  return raw;
}

/** '' (not set) or an absolute path. */
export function parseOptionalAbsolutePath(raw: string): string {
  return raw === '' ? raw : parseAbsolutePath(raw);
}

/** An `https://` URL with a host (no user, query or fragment): refused at start rather than at the first request. */
export function parseHttpsUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || url.username !== '' || url.search !== '' || url.hash !== '') {
    throw new OptionError(`expected an https:// URL such as https://10.0.0.5:10250, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

/** An IPv4 or IPv6 address, as the downward API's status.hostIP gives it. */
export function parseIpAddress(raw: string): string {
  if (isIP(raw) === 0) throw new OptionError(`expected an IPv4 or IPv6 address, got "${raw}"`);
  return raw;
}

export function parseDurationSeconds(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw);
  if (match === null) throw new OptionError(`expected a duration such as 30s, 10m, 24h or 7d, got "${raw}"`);
  const factor = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * factor;
}

/** A duration of at least `minSeconds`. */
export function parseDurationAtLeast(minSeconds: number): (raw: string) => number {
  return (raw) => {
    const seconds = parseDurationSeconds(raw);
    if (seconds < minSeconds) throw new OptionError(`expected at least ${formatDuration(minSeconds)}, got "${raw}"`);
    return seconds;
  };
}

const BYTE_SUFFIXES: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A byte size as Kubernetes writes quantities: `1048576`, `512Mi`, `10Gi`, `1G` (decimal), whole bytes from min to max. */
export function parseByteSize(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const match = /^(\d+(?:\.\d+)?)(k|K|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(raw);
    const bytes = match === null ? Number.NaN : Number(match[1]) * BYTE_SUFFIXES[match[2] ?? ''];
    if (!Number.isInteger(bytes) || bytes < min || bytes > max) {
      throw new OptionError(`expected a size in bytes from ${formatByteSize(min)} to ${formatByteSize(max)} such as 1048576, 512Mi or 10Gi, got "${raw}"`);
    }
    return bytes;
  };
}

/** A size as parseByteSize reads it back: the largest binary unit it divides exactly (`4Mi`, `10Gi`, `1000`). */
export function formatByteSize(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const size = BYTE_SUFFIXES[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** A duration as parseDurationSeconds reads it back: `90` → `90s`, `7200` → `2h`, `604800` → `7d`, `0.1` → `100ms`. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return seconds < 1 && seconds > 0 ? `${Math.round(seconds * 1000)}ms` : `${seconds}s`;
}

type Values<S extends OptionSpecs> = { [K in keyof S]: S[K]['default'] };

export interface CommandLine<V> {
  values: V;
  /** The arguments that are no flags, when the command takes them. */
  positionals: string[];
}

const isBoolean = (spec: OptionSpec<unknown>): boolean => spec.parse === parseBoolean;

/** Reads a daemon's flags (no positional arguments) and env vars. */
export function readOptions<S extends OptionSpecs>(specs: S, argv: readonly string[], env: NodeJS.ProcessEnv): Values<S> {
  return readCommandLine(specs, argv, env).values;
}

/** Reads flags, env vars and, with `positionals: true`, the other arguments of a command. */
export function readCommandLine<S extends OptionSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  { positionals: allowPositionals = false } = {},
): CommandLine<Values<S>> {
  const byName = new Map(Object.entries(specs).map(([key, spec]) => [spec.flag.slice(2), key]));
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(Object.values(specs).map((spec) => [spec.flag.slice(2), { type: isBoolean(spec) ? 'boolean' : 'string' } as const])),
    // Not strict: the tokens are checked here, so that each mistake gets a message naming the flag.
    strict: false,
    allowPositionals: true,
    allowNegative: true,
    tokens: true,
  });
  const fromFlags = new Map<string, string>();
  const positionals: string[] = [];
  let lastBoolean: string | undefined;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      // `--registry-insecure false` would otherwise be true and a stray "false".
      if (lastBoolean !== undefined && /^(true|false|yes|no|1|0)$/.test(token.value)) {
        throw new OptionError(`${lastBoolean} takes no separate value: write ${lastBoolean} or ${lastBoolean}=${token.value} (--no-${lastBoolean.slice(2)} for false)`);
      }
      if (!allowPositionals) throw new OptionError(`unexpected argument "${token.value}"; run with --help for the list of flags`);
      positionals.push(token.value);
      lastBoolean = undefined;
      continue;
    }
    const key = byName.get(token.name);
    const spec = key === undefined ? undefined : specs[key];
    const negated = spec !== undefined && isBoolean(spec) && token.rawName === `--no-${token.name}`;
    if (key === undefined || spec === undefined || (token.rawName !== spec.flag && !negated)) {
      throw new OptionError(`unknown flag ${token.rawName}; run with --help for the list of flags`);
    }
    lastBoolean = undefined;
    if (isBoolean(spec)) {
      fromFlags.set(key, negated ? 'false' : (token.value ?? 'true'));
      if (token.value === undefined) lastBoolean = spec.flag;
    } else {
      // parseArgs takes the next argument as the value whatever it is; another flag is no value.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
        throw new OptionError(`${spec.flag} needs a value: ${spec.flag} <value> or ${spec.flag}=<value>`);
      }
      fromFlags.set(key, token.value.trim());
    }
  }
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const raw = fromFlags.get(key) ?? (spec.env === undefined ? undefined : env[spec.env]);
    if (raw === undefined || raw === '') {
      values[key] = spec.default;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new OptionError(`${spec.flag}${spec.env === undefined ? '' : ` (env ${spec.env})`}: ${why}`);
    }
  }
  return { values: values as Values<S>, positionals };
}

/** A value as a person writes it: through the spec's format, a list joined by commas. */
export function formatOptionValue(spec: OptionSpec<unknown>, value: unknown): string {
  if (spec.format !== undefined) return spec.format(value);
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The default as the docs show it: its text, `(none)` when empty, else the value as written. */
export function formatOptionDefault(spec: OptionSpec<unknown>): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value: unknown = spec.default;
  if (value === '' || (Array.isArray(value) && value.length === 0)) return '(none)';
  return formatOptionValue(spec, value);
}

/** The `--help` text: one entry a flag, with its env var and default (strings quoted, as they would be written). */
export function describeOptions(specs: OptionSpecs): string {
  return Object.values(specs)
    .map((spec) => {
      const shown = formatOptionDefault(spec);
      const quoted = spec.defaultText === undefined && spec.format === undefined && shown !== '(none)' && typeof spec.default !== 'number' && typeof spec.default !== 'boolean';
      const env = spec.env === undefined ? '' : `env ${spec.env}, `;
      return `  ${spec.flag}${isBoolean(spec) ? '' : ' <value>'}   ${env}default ${quoted ? JSON.stringify(shown) : shown}\n      ${spec.description}`;
    })
    .join('\n');
}

/** The `--help` text of every Cryo process: the usage line, what it does, then its flags. */
export function helpText(usage: string, specs: OptionSpecs, about = ''): string {
  return (
    `Usage: ${usage}\n\n${about === '' ? '' : `${about}\n\n`}` +
    'Flags (a flag wins over its env var; a boolean flag alone means true, --no-<flag> false;\n' +
    'durations such as 30s, 10m, 24h, 7d; sizes such as 512Mi, 10Gi):\n' +
    `${describeOptions(specs)}\n`
  );
}

/**
 * The settings a process runs with, for its start log: each flag (without `--`) and its value as
 * it would be written (durations `2m`, sizes `4Mi`).
 */
export function describeSettings(specs: OptionSpecs, values: Record<string, unknown>): Record<string, string | number | boolean | readonly unknown[]> {
  return Object.fromEntries(
    Object.entries(specs).map(([key, spec]) => {
      const value = values[key];
      const shown = spec.format !== undefined ? spec.format(value) : value;
      return [spec.flag.slice(2), shown as string | number | boolean | readonly unknown[]];
    }),
  );
}

/**
 * The Markdown table the docs show (README.md, docs/): flag, env, default, meaning, one row a
 * flag, generated from the specs so that the docs say what the code does.
 */
export function optionTable(specs: OptionSpecs): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('<', '\\<');
  const rows = Object.values(specs).map(
    (spec) => `| \`${spec.flag}\` | ${spec.env === undefined ? '' : `\`${spec.env}\``} | ${cell(formatOptionDefault(spec))} | ${cell(spec.description)} |`,
  );
  return ['| flag | env | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Options more than one Cryo process has, declared once. */
export const sharedOptionSpecs = {
  hostHooksDir: {
    flag: '--host-hooks-dir', env: 'CRYO_HOST_HOOKS_DIR', default: DEFAULT_HOST_HOOKS_DIR, parse: parseAbsolutePath,
    description: 'Host directory with one hook socket directory per pod: the node agent serves them, the webhook mounts them. Set it the same in both.',
  } satisfies OptionSpec<string>,
  kubeconfig: {
    flag: '--kubeconfig', env: 'KUBECONFIG', default: '', parse: parseString,
    description: 'kubeconfig file; in a pod the service account is used.',
  } satisfies OptionSpec<string>,
};
