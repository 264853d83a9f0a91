/** What of a CRIU dump.log/restore.log a test shows: its end, plus any error logged before it. */
import { readFile } from 'node:fs/promises';

export async function criuLogTail(path: string, lines = 40): Promise<string> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => `(no ${path}: ${err.code})`);
  const all = text.trimEnd().split('\n');
  const tail = all.slice(-lines);
  // CRIU logs the cause first and the unwinding after it; keep the cause when the tail misses it.
  // (Every dump here logs one harmless "Can't setup RLIMIT_NOFILE" error: see docs/lab.md.)
  const earlier = all.slice(0, -lines).filter((line) => line.includes('Error (') && !line.includes('RLIMIT_NOFILE'));
  return [...earlier, ...(earlier.length > 0 ? ['...'] : []), ...tail].join('\n');
}

/** CRIU's own run time, in seconds: the elapsed-time stamp "(SS.ssssss)" of the last line of its dump.log or restore.log. */
export async function criuLogSeconds(path: string): Promise<number> {
  return criuLogTextSeconds(await readFile(path, 'utf8'));
}

/** criuLogSeconds of a log's text (read elsewhere, e.g. on a cluster node); NaN when it has no stamp. */
export function criuLogTextSeconds(text: string): number {
  const stamps = [...text.matchAll(/^\((\d+\.\d+)\)/gm)];
  return Number(stamps.at(-1)?.[1] ?? NaN);
}
