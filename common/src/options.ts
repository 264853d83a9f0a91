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
    let value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
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
      const def = spec.defaultText ?? (spec.default === '' || spec.default === undefined ? '(none)' : JSON.stringify(spec.default));
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
