/**
 * The security review's finding, as a test: one hook-enabled pod flooding the agent from every
 * connection it may open, without ever reading, must leave the agent's memory bounded and the
 * other pods' hook sessions working. The server runs in a process of its own with the agent's
 * Node settings (hook-server-child.ts), so what is measured is that process's memory alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CheckpointHooks, protocol, silentHookLogger } from '@cryo/hook-sdk';
import { NODE_AGENT_ENV, NODE_AGENT_NODE_FLAGS } from '../node-runtime.ts';
import type { HookPod } from './hook-pod.ts';
import type { ChildReply, ChildRequest, MemorySample } from './hook-server-child.ts';
import { DEFAULT_MAX_CONNECTIONS_PER_POD, MAX_ID_LENGTH } from './hook-limits.ts';
import { clientFrame, connectRaw, connectSocket, helloMessage, Opcode, textFrame } from './raw-websocket-client.ts';

const MiB = 1024 * 1024;
const FLOOD_MS = 3_000;
/**
 * What the flood may add to the agent's memory. The limits allow about 14 MiB for a pod's 32
 * connections (each: 256 KiB unsent, a 64 KiB message being read, its socket's read buffer);
 * the rest is slack for the garbage the churn of connections leaves (measured: 5–12 MiB in all).
 * Before the limits, the same flood grew the process by about 400 MiB.
 */
const MAX_GROWTH_BYTES = 64 * MiB;

const noisyPod: HookPod = { uid: randomUUID(), name: 'noisy-0', namespace: 'tenant-a' };
const quietPod: HookPod = { uid: randomUUID(), name: 'quiet-0', namespace: 'tenant-b' };

let dir: string;
let child: ChildProcess;
let quiet: CheckpointHooks | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hook-memory-'));
});

afterEach(async () => {
  await quiet?.stop();
  if (child.connected) child.disconnect();
  await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
  await rm(dir, { recursive: true, force: true });
});

function ask<K extends ChildRequest['kind']>(request: ChildRequest & { kind: K }): Promise<ChildReply & { kind: K }> {
  return new Promise((resolve) => {
    const onMessage = (reply: ChildReply) => {
      if (reply.kind !== request.kind) return;
      child.off('message', onMessage);
      resolve(reply as ChildReply & { kind: K });
    };
    child.on('message', onMessage);
    child.send(request);
  });
}

/** What a hostile process sends, as fast as its socket takes it, never reading an answer. */
const floods = {
  // The finding: pings whose ids (almost 64 KiB) the agent echoed in full.
  'long-id pings': textFrame({ type: 'ping', id: 'i'.repeat(protocol.MAX_MESSAGE_BYTES - 100) }),
  'pings': textFrame({ type: 'ping', id: 'i'.repeat(MAX_ID_LENGTH) }),
  'ping frames': clientFrame(Opcode.ping, 'p'.repeat(125)),
  'answers to prepares never sent': textFrame({ type: 'failed', id: 'p'.repeat(MAX_ID_LENGTH), checkpointId: 'x/y', errors: [] }),
  // Costs the agent parsing only.
  'largest ignored messages': textFrame({ type: 'from-the-future', pad: 'x'.repeat(protocol.MAX_MESSAGE_BYTES - 50) }),
};

/** One hostile connection after another until `until`: a flood per connection, or a stalled upgrade. */
async function attack(socketPath: string, kind: keyof typeof floods | 'stalled upgrades', until: number): Promise<number> {
  let connections = 0;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  while (performance.now() < until) {
    try {
      if (kind === 'stalled upgrades') {
        const socket = await connectSocket(socketPath);
        connections++;
        socket.write(`GET ${protocol.PROTOCOL_PATH} HTTP/1.1\r\nHost: agent\r\n`);
        socket.resume();
        await Promise.race([new Promise((resolve) => socket.once('close', resolve)), sleep(Math.max(0, until - performance.now()))]);
        socket.destroy();
        continue;
      }
      const connection = await connectRaw(socketPath, { read: false });
      connections++;
      await connection.write(textFrame(helloMessage(randomUUID().replaceAll('-', ''), noisyPod.uid)));
      const frame = floods[kind];
      const burst = Buffer.concat(Array.from({ length: Math.max(1, Math.floor(64 * 1024 / frame.length)) }, () => frame));
      while (performance.now() < until && (await connection.write(burst)));
      connection.socket.destroy();
    } catch {
      await sleep(20); // refused: the pod is at its connection cap, or the socket is paused for a dump
    }
  }
  return connections;
}

it("keeps the agent's memory bounded while one pod floods it from every connection it may open, and another pod checkpoints meanwhile", async () => {
  const childPath = fileURLToPath(new URL('./hook-server-child.ts', import.meta.url));
  child = fork(childPath, [dir, JSON.stringify([noisyPod, quietPod])], {
    execArgv: [...NODE_AGENT_NODE_FLAGS, '--expose-gc'],
    env: { ...process.env, ...NODE_AGENT_ENV },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const sockets = await new Promise<Record<string, string>>((resolve, reject) => {
    child.once('message', (reply: ChildReply) => (reply.kind === 'ready' ? resolve(reply.sockets) : reject(new Error(`unexpected ${reply.kind}`))));
    child.once('exit', (code) => reject(new Error(`the hook server process exited (${code})`)));
  });

  quiet = new CheckpointHooks({ socketPath: sockets[quietPod.uid], podUid: quietPod.uid, container: 'app', logger: silentHookLogger });
  quiet.register({ name: 'pool', beforeCheckpoint: () => {}, afterRestore: () => {} });
  const welcomed = new Promise((resolve) => quiet!.once('connected', resolve));
  quiet.start();
  await welcomed;

  const baseline = (await ask({ kind: 'memory', gc: true })).current;
  const until = performance.now() + FLOOD_MS;
  // More attackers than the pod may have connections: some are refused at every moment.
  const kinds = [...Object.keys(floods), 'stalled upgrades'] as Array<keyof typeof floods | 'stalled upgrades'>;
  const attackers = Array.from({ length: DEFAULT_MAX_CONNECTIONS_PER_POD + 8 }, (_, i) => attack(sockets[noisyPod.uid], kinds[i % kinds.length], until));

  await new Promise((resolve) => setTimeout(resolve, FLOOD_MS / 3));
  const checkpoint = await ask({ kind: 'checkpoint', podUid: quietPod.uid, checkpointId: 'tenant-b/during-the-flood' });
  const connections = (await Promise.all(attackers)).reduce((a, b) => a + b, 0);
  const { peak } = await ask({ kind: 'memory' });

  const mib = (sample: MemorySample) => `rss ${(sample.rss / MiB).toFixed(1)} MiB, heap ${(sample.heapUsed / MiB).toFixed(1)} MiB, external ${(sample.external / MiB).toFixed(1)} MiB`;
  console.log(`hook server memory: before the flood ${mib(baseline)}; peak during it ${mib(peak)}; ${connections} hostile connections made`);
  expect(child.exitCode).toBeNull();
  expect(checkpoint, checkpoint.reasons.join()).toMatchObject({ status: 'ready' });
  expect(connections).toBeGreaterThan(DEFAULT_MAX_CONNECTIONS_PER_POD);
  expect(peak.rss - baseline.rss).toBeLessThan(MAX_GROWTH_BYTES);
  await new Promise<void>((resolve) => (quiet!.state === 'connected' ? resolve() : quiet!.once('connected', () => resolve())));
}, 60_000);
