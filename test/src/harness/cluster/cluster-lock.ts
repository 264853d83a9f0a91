/**
 * One test file at a time on the test cluster: vitest runs files in parallel workers, and there is
 * one cluster per machine. Cluster.up() takes this lock and Cluster.down() gives it back; a worker
 * that dies gives it back too (flock(1) holds it for as long as its stdin stays open).
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/** Waits for an exclusive flock on `file` and returns the function that releases it. */
export function holdClusterLock(file: string, timeoutMs: number): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '--timeout', String(Math.ceil(timeoutMs / 1000)), file, 'sh', '-c', 'echo held; exec cat >/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`flock ${file} exited ${code} before taking the lock (held by another test file for ${timeoutMs} ms?) ${stderr}`.trim())));
    child.stdout.once('data', () => {
      // Held: nothing of it may keep this process alive (CRYO_CLUSTER_KEEP=1 leaves it held to the end).
      child.unref();
      for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as Socket).unref();
      resolve(() => child.stdin.end());
    });
  });
}
