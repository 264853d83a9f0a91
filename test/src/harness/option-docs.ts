/**
 * Test helpers that keep a process's flags honest: the docs' flag tables say what the option
 * specs say (a catalog kept true by a test), every flag is read by the code it configures, and a
 * process's entry point can be run as a child with an env of the test's choosing.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { formatByteSize, formatDuration, optionTable, type OptionSpecs } from '@cryo/common';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Set CRYO_WRITE_DOCS=1 to have documentedOptionTable rewrite the table from the specs. */
const WRITE_DOCS = process.env.CRYO_WRITE_DOCS === '1';

/**
 * The flag table under `heading` in `file` (relative to the repository root), and the table the
 * specs make. With CRYO_WRITE_DOCS=1 the file's table is first replaced by the specs' one.
 */
export function documentedOptionTable(file: string, heading: string, specs: OptionSpecs): { documented: string; expected: string } {
  const path = join(REPO_ROOT, file);
  const expected = optionTable(specs);
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const at = lines.indexOf(heading);
  if (at === -1) throw new Error(`${file} has no heading "${heading}"`);
  const start = lines.findIndex((line, i) => i > at && line.startsWith('| flag |'));
  const next = lines.findIndex((line, i) => i > at && line.startsWith('#'));
  if (start === -1 || (next !== -1 && next < start)) throw new Error(`${file} has no flag table under "${heading}"`);
  let end = start;
  while (end < lines.length && lines[end].startsWith('|')) end++;
  if (WRITE_DOCS) {
    writeFileSync(path, [...lines.slice(0, start), expected, ...lines.slice(end)].join('\n'));
    return { documented: expected, expected };
  }
  return { documented: lines.slice(start, end).join('\n'), expected };
}

/** The spec keys that no source file under `dir` (tests and `except` aside) mentions: flags that do nothing. */
export function unreadOptions(specs: OptionSpecs, dir: string, except: readonly string[]): string[] {
  const sources = listSources(dir)
    .filter((file) => !file.endsWith('.test.ts') && !except.includes(relative(dir, file)))
    .map((file) => readFileSync(file, 'utf8'));
  return Object.keys(specs).filter((key) => !sources.some((source) => new RegExp(`\\b${key}\\b`).test(source)));
}

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * The flags whose values would print as raw numbers: a key ending in `Seconds` shows through
 * formatDuration (`2m`), one ending in `Bytes` through formatByteSize (`4Mi`).
 */
export function unreadableOptions(specs: OptionSpecs): string[] {
  return Object.entries(specs)
    .filter(([key, spec]) => (key.endsWith('Seconds') && spec.format !== formatDuration) || (key.endsWith('Bytes') && spec.format !== formatByteSize))
    .map(([, spec]) => spec.flag);
}

export interface EntryResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a TypeScript entry point with Node and exactly `env` (nothing inherited), to its end or `timeoutMs`. */
export function runEntry(file: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<EntryResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { env, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export interface ProcessFlags {
  specs: OptionSpecs;
  /** The doc and the heading its flag table stands under: ['README.md', '## Webhook configuration']. */
  table: readonly [file: string, heading: string];
  /** The sources that read the flags, relative to the repository root, and files there not to count (config.ts). */
  sources: string;
  except: readonly string[];
}

/** The tests every process's flags pass: documented as declared, each read, durations and sizes readable. */
export function itKeepsItsFlagsTrue({ specs, table: [file, heading], sources, except }: ProcessFlags): void {
  it(`are the table ${file} shows under "${heading}" (CRYO_WRITE_DOCS=1 rewrites it from the specs)`, () => {
    const { documented, expected } = documentedOptionTable(file, heading, specs);
    expect(documented).toBe(expected);
  });

  it(`are each read by the code under ${sources}: a flag that does nothing is wired or removed`, () => {
    expect(unreadOptions(specs, join(REPO_ROOT, sources), except)).toEqual([]);
  });

  it('show durations and sizes as they are written (2m, 4Mi), in --help, the docs and the start log', () => {
    expect(unreadableOptions(specs)).toEqual([]);
  });
}

/**
 * A daemon's entry point, run with no cluster configured (no KUBERNETES_SERVICE_HOST, no
 * KUBECONFIG, a HOME without ~/.kube): it exits 2 at once with one line saying what to set,
 * instead of retrying localhost:8080 forever.
 */
export function itExitsWithoutACluster(entry: string, env: NodeJS.ProcessEnv = {}): void {
  it('exits 2 at once with one line saying what to set when no cluster is configured', async () => {
    const result = await runEntry(join(REPO_ROOT, entry), [], { HOME: '/nonexistent/cryo-home', ...env });
    expect(result.code, result.stderr).toBe(2);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({
      level: 'error',
      msg: 'cannot start: no Kubernetes cluster configured: run inside a pod, set KUBECONFIG, or pass --kubeconfig <file>',
    });
    expect(result.ms).toBeLessThan(15_000);
  });
}

/** A kubeconfig naming a cluster at https://127.0.0.1:1, where nothing answers: configured, never reached. */
export function writeUnreachableKubeconfig(dir: string): string {
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
      clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
    }),
  );
  return file;
}
