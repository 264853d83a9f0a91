/**
 * CRIU's own error lines for a failed dump. The runtime's error reaches the kubelet's 500 with
 * CRIU's words left out: it only names CRIU's log file (containerd through runc:
 * `criu failed: type DUMP errno 0 path= <dir>/<id>/criu-dump.log`; CRI-O through crun:
 * `CRIU checkpointing failed -52.  Please check CRIU logfile <dir>/<id>/userdata/dump.log: …`;
 * runc or crun on their own: `log file: <path>`). The words ("Connected TCP socket, consider using --tcp-established
 * option") are in that file, so the agent reads it, but because the path comes from an answer
 * over the network, only inside the directories the operator allowed (--criu-log-dirs), never
 * through a symlink, only a regular file, only its last 256 KiB. Any failure gives undefined:
 * the runtime's message is still the message, just without CRIU's lines.
 */
import { constants } from 'node:fs';
import { open, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Where containerd keeps the task bundles of Kubernetes containers; runc's criu-dump.log lands in each. */
export const CONTAINERD_K8S_TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
/** Where CRI-O (its default storage) keeps each container's userdata; crun's dump.log lands there. */
export const CRIO_CONTAINERS_DIR = '/var/lib/containers/storage/overlay-containers';
/** CRIU's cause is near the end of a failed dump's log; a bigger log is read from here on. */
export const MAX_DUMP_LOG_TAIL_BYTES = 256 * 1024;
/** CRIU logs the cause first and the unwinding after it: the first few errors say it. */
export const MAX_CRIU_ERROR_LINES = 3;
export const MAX_CRIU_ERROR_LINE_CHARS = 300;

// The path runs to whitespace or to what closes the surrounding message (`)`, a quote, `;`, `,`);
// a backslash ends it too, in case the message arrives with escaped newlines or quotes.
const LOG_PATH_PATTERNS = [
  /(?<![\w-])path=\s*(\/[^\s"'();,\\]+)/g,
  /log file:\s*(\/[^\s"'();,\\]+)/g,
  // CRI-O follows the path with ": <errno text>", so a colon ends it here.
  /CRIU logfile\s+(\/[^\s"'();,:\\]+)/g,
];
/** `(00.123456) ` */
const TIMESTAMP_PREFIX = /^\(\s*\d+(?:\.\d+)?\)\s*/;
/** Logged by CRIU in many setups without anything failing; it would take the place of the cause. */
const HARMLESS_ERROR = /Can't setup RLIMIT_NOFILE/;

/**
 * CRIU's error lines from the dump log the runtime's error names, when that log lies in one of
 * `allowedDirs` (absolute); undefined when there is no such path, it is not allowed or not a
 * regular file, it cannot be read, or it holds no error line. Never throws.
 */
export async function criuErrorLinesFor(runtimeError: string, allowedDirs: readonly string[]): Promise<string[] | undefined> {
  if (allowedDirs.length === 0) return undefined;
  try {
    for (const logPath of dumpLogPathsIn(runtimeError)) {
      const dir = allowedDirContaining(logPath, allowedDirs);
      if (dir === undefined) continue;
      const log = await readLogTail(resolve(logPath), dir).catch(() => undefined);
      const lines = log === undefined ? [] : criuErrorLinesOf(log);
      if (lines.length > 0) return lines;
    }
  } catch {
    // Nothing here may cost the user the runtime's own message.
  }
  return undefined;
}

/** The CRIU log paths a runtime's error names, in order, each once. */
export function dumpLogPathsIn(runtimeError: string): string[] {
  const found = LOG_PATH_PATTERNS.flatMap((pattern) => [...runtimeError.matchAll(pattern)].map((match) => ({ at: match.index, path: match[1] })));
  return [...new Set(found.sort((a, b) => a.at - b.at).map((f) => f.path))];
}

/**
 * The allowed directory (resolved) that `logPath` lies strictly inside, by its text alone; a path
 * that is relative or has a `..` segment is refused outright rather than resolved.
 */
export function allowedDirContaining(logPath: string, allowedDirs: readonly string[]): string | undefined {
  if (!isAbsolute(logPath) || logPath.split(/[\\/]/).includes('..')) return undefined;
  const resolved = resolve(logPath);
  return allowedDirs.map((dir) => resolve(dir)).find((dir) => isInside(resolved, dir, { orSame: false }));
}

/** The first error lines of a CRIU log, without timestamps, each cut to a readable length. */
export function criuErrorLinesOf(log: string): string[] {
  const lines: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('Error (') || HARMLESS_ERROR.test(line)) continue;
    // Control characters (a \r, terminal escapes) have no place in a status message.
    const text = line.replace(/\p{Cc}+/gu, ' ').replace(TIMESTAMP_PREFIX, '').trim();
    lines.push(text.length > MAX_CRIU_ERROR_LINE_CHARS ? `${text.slice(0, MAX_CRIU_ERROR_LINE_CHARS - 1)}…` : text);
    if (lines.length === MAX_CRIU_ERROR_LINES) break;
  }
  return lines;
}

function isInside(path: string, dir: string, { orSame }: { orSame: boolean }): boolean {
  const rel = relative(dir, path);
  if (rel === '') return orSame;
  return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/** The log's last MAX_DUMP_LOG_TAIL_BYTES, from a whole line on; undefined when it must not be read. */
async function readLogTail(logPath: string, allowedDir: string): Promise<string | undefined> {
  // A symlinked directory on the way could lead anywhere: the real parent must still be inside.
  const realDir = await realpath(allowedDir);
  const realParent = await realpath(dirname(logPath));
  if (!isInside(realParent, realDir, { orSame: true })) return undefined;
  // O_NOFOLLOW: the file itself is no symlink; O_NONBLOCK: a FIFO does not hang the open.
  const handle = await open(join(realParent, basename(logPath)), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return undefined;
    // A directory swapped for a symlink between realpath and open would not show above; what the
    // descriptor points at does (where /proc is there to say it).
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && !isInside(opened, realDir, { orSame: false })) return undefined;
    const length = Math.min(stats.size, MAX_DUMP_LOG_TAIL_BYTES);
    const start = stats.size - length;
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, start);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    return start === 0 ? text : text.slice(text.indexOf('\n') + 1);
  } finally {
    await handle.close();
  }
}
