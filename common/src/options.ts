/**
 * Command-line flags and environment variables, declared once with their defaults and help text.
 * A flag wins over its env var, which wins over the default. Bad values fail at start with a
 * message naming the flag, the env var and the expected form.
 */
import { DEFAULT_HOST_HOOKS_DIR } from './hook-socket.ts';

export interface OptionSpec<T> {
  /** `--tls-secret-name` */
  flag: string;
  /** `CRYO_TLS_SECRET_NAME` */
  env: string;
  default: T;
  description: string;
  parse: (raw: string) => T;
  /** How `--help` shows the default when the value itself reads badly (a file mode, a duration). */
  defaultText?: string;
}

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

export function parseDurationSeconds(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw);
  if (match === null) throw new OptionError(`expected a duration such as 30s, 10m, 24h or 7d, got "${raw}"`);
  const factor = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * factor;
}

const BYTE_SUFFIXES: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A byte size as Kubernetes writes quantities: `1048576`, `512Mi`, `10Gi`, `1G` (decimal), whole bytes from min to max. */
export function parseByteSize(min: number, max: number): (raw: string) => number {
  return (raw) => {
    const match = /^(\d+(?:\.\d+)?)(k|K|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(raw);
    const bytes = match === null ? Number.NaN : Number(match[1]) * BYTE_SUFFIXES[match[2] ?? ''];
    if (!Number.isInteger(bytes) || bytes < min || bytes > max) {
      throw new OptionError(`expected a size in bytes from ${formatBytesForHelp(min)} to ${formatBytesForHelp(max)} such as 1048576, 512Mi or 10Gi, got "${raw}"`);
    }
    return bytes;
  };
}

/** A size as parseByteSize reads it back: the largest binary unit it divides exactly. */
export function formatBytesForHelp(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const size = BYTE_SUFFIXES[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** A duration as parseDurationSeconds reads it back: `90s` → `90s`, `7200` → `2h`, `604800` → `7d`. */
export function formatDurationForHelp(seconds: number): string {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return seconds < 1 && seconds > 0 ? `${Math.round(seconds * 1000)}ms` : `${seconds}s`;
}

type Values<S extends Record<string, OptionSpec<unknown>>> = { [K in keyof S]: S[K]['default'] };

export function readOptions<S extends Record<string, OptionSpec<unknown>>>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Values<S> {
  const byFlag = new Map(Object.entries(specs).map(([key, spec]) => [spec.flag, key]));
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const key = byFlag.get(flag);
    if (key === undefined) {
      throw new OptionError(`unknown argument "${arg}"; run with --help for the list of flags`);
    }
    // A boolean flag alone means true, as in kubectl: --registry-insecure, --registry-insecure=false.
    const isBoolean = specs[key].parse === parseBoolean;
    let value = eq === -1 ? (isBoolean && (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) ? 'true' : argv[++i]) : arg.slice(eq + 1);
    if (value === undefined) throw new OptionError(`${flag} needs a value`);
    value = value.trim();
    fromFlags.set(key, value);
  }
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const raw = fromFlags.get(key) ?? env[spec.env];
    if (raw === undefined || raw === '') {
      values[key] = spec.default;
      continue;
    }
    try {
      values[key] = spec.parse(raw);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new OptionError(`${spec.flag} (env ${spec.env}): ${why}`);
    }
  }
  return values as Values<S>;
}

/** The `--help` text: one line a flag, with its env var and default. */
export function describeOptions(specs: Record<string, OptionSpec<unknown>>): string {
  return Object.values(specs)
    .map((spec) => {
      const def = spec.defaultText ?? (spec.default === '' || spec.default === undefined ? '(none)' : spec.parse === parseDurationSeconds ? formatDurationForHelp(spec.default as number) : JSON.stringify(spec.default));
      return `  ${spec.flag} <value>   env ${spec.env}, default ${def}\n      ${spec.description}`;
    })
    .join('\n');
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
