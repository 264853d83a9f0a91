/**
 * Flags, parsed with node:util parseArgs: each command declares its own beside the ones every
 * command takes (kubeconfig, context, namespace, help), and kubectl's spellings are kept
 * (`-n`, `-o`, `--flag=value` or `--flag value`).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseDurationSeconds } from '@cryo/common';
import { usageError } from './errors.ts';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export const GLOBAL_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

export const GLOBAL_HELP = `Global flags:
  --kubeconfig <file>      kubeconfig to use (default: KUBECONFIG, else ~/.kube/config)
  --context <name>         kubeconfig context to use (default: the current context)
  -n, --namespace <ns>     namespace (default: the context's namespace, else "default")
  -h, --help               this help`;

export type ParsedValues = Record<string, string | boolean | undefined>;

export interface Parsed {
  values: ParsedValues;
  positionals: string[];
}

/** Parses a command's argv; unknown flags and missing values are usage errors naming the command's help. */
export function parseCommandArgs(command: string, argv: readonly string[], options: OptionSpecs): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values, positionals };
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/\. To specify a positional argument.*$/s, '') : String(err);
    throw usageError(`${why}; run kubectl cryo ${command} --help`);
  }
}

export function stringValue(values: ParsedValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function flag(values: ParsedValues, name: string): boolean {
  return values[name] === true;
}

/** `--timeout 5m` in seconds (0: no limit). */
export function durationValue(values: ParsedValues, name: string, fallback: string): number {
  const raw = stringValue(values, name) ?? fallback;
  try {
    return parseDurationSeconds(raw);
  } catch (err) {
    throw usageError(`--${name}: ${(err as Error).message} (0 for no limit)`);
  }
}

/** `--copies 3`: a whole number in range. */
export function integerValue(values: ParsedValues, name: string, fallback: number, min: number, max: number): number {
  const raw = stringValue(values, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw usageError(`--${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
  return value;
}

/** `a,b` → ['a', 'b'], dropping empty entries. */
export function listValue(values: ParsedValues, name: string): string[] | undefined {
  const raw = stringValue(values, name);
  if (raw === undefined) return undefined;
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw usageError(`--${name}: expected a comma-separated list, got "${raw}"`);
  return list;
}

/** The positionals a command takes: exactly `names`, then optionally `optional`. */
export function positionals(command: string, parsed: Parsed, names: readonly string[], optional: readonly string[] = []): string[] {
  const got = parsed.positionals;
  if (got.length < names.length) throw usageError(`missing ${names.slice(got.length).map((n) => `<${n}>`).join(' ')}; usage: kubectl cryo ${command} ${names.map((n) => `<${n}>`).join(' ')}${optional.map((n) => ` [${n}]`).join('')} (see --help)`);
  if (got.length > names.length + optional.length) throw usageError(`unexpected argument "${got[names.length + optional.length]}"; run kubectl cryo ${command} --help`);
  return got;
}

export const OUTPUT_FORMATS = ['json', 'yaml', 'name', 'wide'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputValue(values: ParsedValues, allowed: readonly OutputFormat[] = OUTPUT_FORMATS): OutputFormat | undefined {
  const raw = stringValue(values, 'output');
  if (raw === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw usageError(`-o ${raw}: expected one of ${allowed.join(', ')}`);
  return raw as OutputFormat;
}
