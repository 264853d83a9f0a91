/**
 * Runs registry-push-child.ts and reads the child's peak RSS (VmHWM) from /proc/<pid>/status
 * once it has pushed, before it exits: what the benchmark and the memory test measure.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { NODE_AGENT_ENV, NODE_AGENT_NODE_FLAGS } from '@cryo/node-agent';
import type { LayerCompression } from '../../node-agent/src/storage/registry/layer-compression.ts';

const CHILD = fileURLToPath(new URL('./registry-push-child.ts', import.meta.url));

export interface ChildPush {
  /** What the child printed: a StoredCheckpoint, `{ idle: true }` or `{ error }`. */
  result: { restoreReference?: string; digest?: string; sizeBytes?: number; durationMs?: number; error?: string; idle?: boolean };
  /** Peak resident set of the child, MiB. */
  peakRssMiB: number;
  wallMs: number;
}

/** `nodeDefaults`: run Node with its own defaults instead of the agent image's settings (for comparison). */
export function pushInChild(args: { repository: string; archive: string; chunkSizeBytes?: number; layerCompression?: LayerCompression; idle?: boolean; nodeDefaults?: boolean }, timeoutMs = 600_000): Promise<ChildPush> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // Node as the agent's image runs it (a small young generation, two malloc arenas).
    const { nodeDefaults, ...childArgs } = args;
    const flags = nodeDefaults === true ? [] : NODE_AGENT_NODE_FLAGS;
    const env = nodeDefaults === true ? process.env : { ...process.env, ...NODE_AGENT_ENV };
    const child = spawn(process.execPath, [...flags, CHILD, JSON.stringify(childArgs)], { stdio: ['pipe', 'pipe', 'inherit'], env });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      if (!out.includes('\n')) return;
      const wallMs = performance.now() - started;
      readFile(`/proc/${child.pid}/status`, 'utf8')
        .then((status) => {
          const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
          child.stdin.end();
          resolve({ result: JSON.parse(out.slice(0, out.indexOf('\n'))) as ChildPush['result'], peakRssMiB: hwm ? Number(hwm[1]) / 1024 : NaN, wallMs });
        })
        .catch(reject);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`registry-push-child exited (${code ?? signal}) without an answer`));
    });
  });
}
