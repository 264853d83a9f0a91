/**
 * For hook-memory.test.ts: a hook server in a process of its own, run with the agent's Node
 * settings, so a test can measure what a flooding pod costs the agent's process. Driven over IPC:
 * it serves the pods it is given, reports its memory (current, and the peak since it was last
 * asked), and runs a checkpoint's prepare and finish for a pod.
 */
import { silentLogger } from '@cryo/common';
import { HookServer } from './hook-server.ts';
import type { HookPod } from './hook-pod.ts';

export type ChildRequest = { kind: 'memory'; gc?: boolean } | { kind: 'checkpoint'; podUid: string; checkpointId: string };

export interface MemorySample {
  rss: number;
  heapUsed: number;
  /** Buffers and other memory outside V8's heap: where queued frames live. */
  external: number;
}

export type ChildReply =
  | { kind: 'ready'; sockets: Record<string, string> }
  | { kind: 'memory'; current: MemorySample; peak: MemorySample }
  | { kind: 'checkpoint'; status: string; reasons: string[] };

const [hostHooksDir, podsJson] = process.argv.slice(2);
const pods = JSON.parse(podsJson ?? '[]') as HookPod[];
const server = new HookServer({ hostHooksDir: hostHooksDir, logger: silentLogger() });
await server.sync(pods);

const sample = (): MemorySample => {
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
};
let peak = sample();
const sampler = setInterval(() => {
  const now = sample();
  peak = { rss: Math.max(peak.rss, now.rss), heapUsed: Math.max(peak.heapUsed, now.heapUsed), external: Math.max(peak.external, now.external) };
}, 10);

const reply = (message: ChildReply) => process.send!(message);

process.on('message', (request: ChildRequest) => {
  if (request.kind === 'memory') {
    if (request.gc === true) (globalThis as { gc?: () => void }).gc?.();
    const current = sample();
    reply({ kind: 'memory', current, peak: { rss: Math.max(peak.rss, current.rss), heapUsed: Math.max(peak.heapUsed, current.heapUsed), external: Math.max(peak.external, current.external) } });
    peak = current;
    return;
  }
  void (async () => {
    const result = await server.prepare(request.podUid, { checkpointId: request.checkpointId, timeoutMs: 10_000 });
    await server.finish(request.podUid, request.checkpointId, result.status === 'ready' ? 'done' : 'aborted');
    reply({ kind: 'checkpoint', status: result.status, reasons: result.status === 'failed' ? result.reasons : [] });
  })();
});

process.once('disconnect', () => {
  clearInterval(sampler);
  void server.close().finally(() => process.exit(0));
});

reply({ kind: 'ready', sockets: Object.fromEntries(pods.map((pod) => [pod.uid, server.socketPath(pod.uid)!])) });
