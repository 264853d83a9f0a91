/**
 * The JVM the lab, the demo, the cluster tests and bench:jvm checkpoint: the Java hook client's
 * example WarmIndexService (hook-sdk-java/examples/…/WarmIndexService.java), which builds an index
 * for many seconds at start and then answers GET /lookup?key=K from it. What a checkpoint needs of
 * the JVM is in JVM_FLAGS (docs/jvm.md says why each).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runCommand } from '../lab/run-command.ts';

/** The class to run, from the classes buildJavaClasses() compiles. */
export const WARM_INDEX_MAIN = 'dev.cryo.hooks.examples.WarmIndexService';

/**
 * The flags a JVM to be checkpointed runs with (docs/jvm.md): one small heap and a GC that leaves
 * little to dump, no shared perf-data file, and the heap given back after the pre-checkpoint GC.
 */
export const JVM_FLAGS = ['-XX:+UseSerialGC', '-Xms64m', '-Xmn32m', '-Xmx1g', '-XX:MinHeapFreeRatio=10', '-XX:MaxHeapFreeRatio=20', '-XX:-UsePerfData'] as const;

/** The service's defaults (its env INDEX_ENTRIES and INDEX_ROUNDS). */
export const WARM_INDEX_DEFAULTS = { entries: 400_000, rounds: 320 } as const;

/** What GET /lookup answers. */
export interface WarmIndexLookup {
  key: number;
  value: string;
  entries: number;
  rounds: number;
  instanceId: string;
  restoreCount: number;
}

/** What GET /state answers. */
export interface WarmIndexState {
  ready: boolean;
  entries: number;
  warmUpMillis: number;
  /** VmRSS of the JVM. */
  rssBytes: number;
  instanceId: string;
  restoreCount: number;
  lastOutcome: string | null;
  pid: number;
  hostname: string;
  events: string[];
}

/** The right answer for `key`, computed here as the service does (SHA-256, `rounds` times, of "cryo:key"), so no index is needed to check one. */
export function warmIndexValue(key: number, rounds: number = WARM_INDEX_DEFAULTS.rounds): string {
  let digest: Buffer = Buffer.from(`cryo:${key}`, 'utf8');
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest();
  return digest.toString('hex');
}

/** Compiles the Java hook client and its examples (hook-sdk-java/build.sh: javac, offline); returns the classes directory for -cp. */
export async function buildJavaClasses(repoRoot: string): Promise<string> {
  const out = join(repoRoot, '.tmp/java/classes');
  const built = await runCommand(['bash', join(repoRoot, 'hook-sdk-java/build.sh')], { timeoutMs: 300_000, env: { OUT: out } });
  if (built.code !== 0) throw new Error(`hook-sdk-java/build.sh failed (a JDK with javac 17+ is needed: scripts/lab/provision.sh installs one):\n${built.stderr}${built.stdout}`);
  return out;
}

/** The java command line of the service, given where `java` and the classes are (and other flags than JVM_FLAGS, to compare). */
export function warmIndexCommand(java: string, classes: string, flags: readonly string[] = JVM_FLAGS): string[] {
  return [java, ...flags, '-cp', classes, WARM_INDEX_MAIN];
}
