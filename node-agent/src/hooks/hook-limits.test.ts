/**
 * The hook server bounds everything a pod controls (docs/hook-protocol.md §1.1): each limit
 * against the real server over real unix sockets, with the close code and metric a client and an
 * operator see, while another pod's processes carry on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureLogger, waitFor } from '@cryo/test';
import { CheckpointHooks, protocol, silentHookLogger } from '@cryo/hook-sdk';
import { Metrics } from '@cryo/common';
import { HookServer, type HookServerOptions } from './hook-server.ts';
import { HookMetrics } from './hook-metrics.ts';
import { DEFAULT_CONNECTION_LIMITS, MAX_ID_LENGTH, WEBSOCKET_RECEIVE_LIMITS } from './hook-limits.ts';
import type { HookPod } from './hook-pod.ts';
import { clientFrame, connectRaw, connectSocket, helloMessage, Opcode, textFrame, type RawConnection } from './raw-websocket-client.ts';

let dir: string;
let server: HookServer;
let metrics: Metrics;
const clients: CheckpointHooks[] = [];
const raws: RawConnection[] = [];
const podA: HookPod = { uid: randomUUID(), name: 'noisy-0', namespace: 'tenant-a' };
const podB: HookPod = { uid: randomUUID(), name: 'quiet-0', namespace: 'tenant-b' };

async function startServer(options: Partial<HookServerOptions> = {}): Promise<void> {
  await server?.close();
  metrics = new Metrics({ defaultMetrics: false });
  server = new HookServer({ hostHooksDir: dir, logger: captureLogger().logger, metrics: new HookMetrics(metrics), ...options });
  await server.sync([podA, podB]);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hook-limits-'));
  await startServer();
});

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.socket.destroy();
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const socketOf = (pod: HookPod) => server.socketPath(pod.uid)!;

async function raw(pod: HookPod, options: { read?: boolean; hello?: boolean } = {}): Promise<RawConnection> {
  const connection = await connectRaw(socketOf(pod), options);
  raws.push(connection);
  if (options.hello !== false) {
    await connection.write(textFrame(helloMessage(randomUUID().replaceAll('-', ''), pod.uid)));
    if (options.read !== false) await waitFor(() => connection.messages().some((m) => m.type === 'welcome'), { what: 'welcome' });
    else await waitFor(() => server.sessions(pod.uid).length > 0, { what: 'the session' });
  }
  return connection;
}

/** A well-behaved process of pod B, connected through the SDK. */
async function quietProcess(): Promise<CheckpointHooks> {
  const hooks = new CheckpointHooks({ socketPath: socketOf(podB), podUid: podB.uid, container: 'app', logger: silentHookLogger });
  clients.push(hooks);
  hooks.register({ name: 'pool', beforeCheckpoint: () => {}, afterRestore: () => {} });
  const connected = new Promise((resolve) => hooks.once('connected', resolve));
  hooks.start();
  await connected;
  return hooks;
}

/** Pod B's whole checkpoint round: prepare, every process ready and gone, finish, reconnected. */
async function checkpointQuietPod(hooks: CheckpointHooks, checkpointId: string): Promise<void> {
  const result = await server.prepare(podB.uid, { checkpointId, timeoutMs: 5_000 });
  expect(result.status, result.status === 'failed' ? result.reasons.join() : '').toBe('ready');
  const resumed = new Promise((resolve) => hooks.once('connected', (_kind, message) => resolve(message)));
  await server.finish(podB.uid, checkpointId, 'done');
  expect(await resumed).toMatchObject({ type: 'resumed', checkpointId, outcome: 'done' });
}

/** A client that does not read sees the server close only once it reads again (and discards what piled up). */
function ended(connection: RawConnection): Promise<void> {
  connection.socket.resume();
  return connection.ended;
}

async function metricsText(): Promise<string> {
  return (await metrics.render()).body;
}

const limitCount = async (limit: string) => Number(new RegExp(`cryo_hook_limits_exceeded_total\\{limit="${limit}"\\} (\\d+)`).exec(await metricsText())?.[1] ?? 0);

describe('message and id sizes', () => {
  it(`takes a message of exactly ${protocol.MAX_MESSAGE_BYTES} bytes, and closes with 1009 on one byte more`, async () => {
    const connection = await raw(podA);
    const message = (size: number) => {
      const frame = JSON.stringify({ type: 'from-the-future', pad: '' });
      return JSON.stringify({ type: 'from-the-future', pad: 'x'.repeat(size - frame.length) });
    };
    await connection.write(textFrame(message(protocol.MAX_MESSAGE_BYTES)));
    await connection.write(textFrame({ type: 'ping', id: 'after-the-largest' }));
    await waitFor(() => connection.messages().some((m) => m.type === 'pong'), { what: 'the pong' });
    await connection.write(textFrame(message(protocol.MAX_MESSAGE_BYTES + 1)));
    await connection.ended;
    expect(connection.closeCode()).toBe(1009);
    expect(await limitCount('message-size')).toBe(1);
  });

  it(`takes a message in ${WEBSOCKET_RECEIVE_LIMITS.maxFragments} fragments, and closes with 1008 on more`, async () => {
    const connection = await raw(podA);
    const fragmented = (count: number) => {
      const text = JSON.stringify({ type: 'ping', id: 'fragmented' }).padEnd(count, ' ');
      return Buffer.concat(
        Array.from({ length: count }, (_, i) => clientFrame(i === 0 ? Opcode.text : Opcode.continuation, text.slice(i, i + 1 === count ? undefined : i + 1), { fin: i + 1 === count })),
      );
    };
    await connection.write(fragmented(WEBSOCKET_RECEIVE_LIMITS.maxFragments));
    await waitFor(() => connection.messages().some((m) => m.type === 'pong'), { what: 'the pong' });
    await connection.write(fragmented(WEBSOCKET_RECEIVE_LIMITS.maxFragments + 1));
    await connection.ended;
    expect(connection.closeCode()).toBe(1008);
    expect(await limitCount('message-parts')).toBe(1);
  });

  it(`echoes ids of up to ${MAX_ID_LENGTH} characters; a longer one is a bad-message closing with 4002, not echoed`, async () => {
    const connection = await raw(podA);
    await connection.write(textFrame({ type: 'ping', id: 'i'.repeat(MAX_ID_LENGTH) }));
    await waitFor(() => connection.messages().some((m) => m.type === 'pong'), { what: 'the pong' });
    // The finding: a ping id of almost 64 KiB was echoed in full, as often as the client asked.
    await connection.write(textFrame({ type: 'ping', id: 'i'.repeat(60_000) }));
    await connection.ended;
    expect(connection.closeCode()).toBe(protocol.CloseCode.badMessage);
    expect(connection.messages().slice(1)).toEqual([
      { type: 'pong', id: 'i'.repeat(MAX_ID_LENGTH) },
      { type: 'error', code: 'bad-message', message: `an id may have at most ${MAX_ID_LENGTH} characters; this one has 60000` },
    ]);
    const text = await metricsText();
    expect(text).toMatch(/cryo_hook_protocol_errors_total\{code="bad-message"\} 1/);
    expect(text).toMatch(/cryo_hook_limits_exceeded_total\{limit="id-length"\} 1/);
  });

  it('holds answers to prepare to the same id limit', async () => {
    const connection = await raw(podA);
    await connection.write(textFrame({ type: 'ready', id: 'p'.repeat(MAX_ID_LENGTH + 1), checkpointId: 'x/y' }));
    await connection.ended;
    expect(connection.closeCode()).toBe(protocol.CloseCode.badMessage);
  });
});

describe('requests answered at a bounded rate', () => {
  const { requestBurst, requestsPerSecond } = DEFAULT_CONNECTION_LIMITS;

  it(`answers a burst of ${requestBurst} pings, and refuses the next with bad-message, closing with 4002`, async () => {
    const connection = await raw(podA);
    await connection.write(Buffer.concat(Array.from({ length: requestBurst + 5 }, (_, i) => textFrame({ type: 'ping', id: `c-${i}` }))));
    await connection.ended;
    const messages = connection.messages().slice(1);
    expect(messages.filter((m) => m.type === 'pong')).toHaveLength(requestBurst);
    expect(messages.at(-1)).toEqual({ type: 'error', code: 'bad-message', message: `too many requests (ping): at most ${requestBurst} at once, then ${requestsPerSecond} per second` });
    expect(connection.closeCode()).toBe(protocol.CloseCode.badMessage);
    expect(await limitCount('request-rate')).toBe(1);
  });

  it('counts WebSocket ping frames and answers to prepares never sent against the same rate', async () => {
    const pings = await raw(podA);
    await pings.write(Buffer.concat(Array.from({ length: requestBurst + 1 }, () => clientFrame(Opcode.ping, 'are you there'))));
    await pings.ended;
    expect(pings.frames.filter((f) => f.opcode === Opcode.pong)).toHaveLength(requestBurst);
    expect(pings.closeCode()).toBe(protocol.CloseCode.badMessage);

    const strays = await raw(podA);
    await strays.write(Buffer.concat(Array.from({ length: requestBurst + 1 }, (_, i) => textFrame({ type: 'ready', id: `p-${i}`, checkpointId: 'x/y' }))));
    await strays.ended;
    expect(strays.messages().filter((m) => m.code === 'unknown-request')).toHaveLength(requestBurst);
    expect(strays.closeCode()).toBe(protocol.CloseCode.badMessage);
    expect(await limitCount('request-rate')).toBe(2);
  });

  it('answers pings at the steady rate for as long as the client keeps to it', async () => {
    await startServer({ limits: { requestBurst: 2, requestsPerSecond: 20 } });
    const connection = await raw(podA);
    for (let i = 0; i < 10; i++) {
      await connection.write(textFrame({ type: 'ping', id: `steady-${i}` }));
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    await waitFor(() => connection.messages().filter((m) => m.type === 'pong').length === 10, { what: 'ten pongs' });
    expect(connection.closeCode()).toBeUndefined();
  });
});

describe('what a client sends', () => {
  it('is read more slowly past the receive rate, and nothing is lost', async () => {
    await startServer({ limits: { receiveBurstMessages: 10, receiveMessagesPerSecond: 100, requestBurst: 1_000, requestsPerSecond: 1_000 } });
    const connection = await raw(podA);
    const pongs = () => connection.messages().filter((m) => m.type === 'pong');
    // What one read brings is handled; the debt it leaves (the hello and 60 pings, 10 allowed at
    // once: 51 messages at 100 a second) pauses reading the next.
    await connection.write(Buffer.concat(Array.from({ length: 60 }, (_, i) => textFrame({ type: 'ping', id: `r-${i}` }))));
    await waitFor(() => pongs().length === 60, { what: 'the first pongs' });
    const sent = performance.now();
    await connection.write(textFrame({ type: 'ping', id: 'r-60' }));
    await waitFor(() => pongs().length === 61, { what: 'the last pong' });
    expect(performance.now() - sent).toBeGreaterThanOrEqual(300);
    expect(pongs().map((m) => m.id)).toEqual(Array.from({ length: 61 }, (_, i) => `r-${i}`));
    expect(connection.closeCode()).toBeUndefined();
  });
});

describe('unsent bytes', () => {
  const { maxUnsentBytes } = DEFAULT_CONNECTION_LIMITS;

  it(`never queues more than ${maxUnsentBytes} bytes for a client that does not read: the connection is cut instead`, async () => {
    const stuck = await raw(podA, { read: false });
    const quiet = await quietProcess();
    let most = 0;
    for (let i = 0; i < 1_000 && server.sessions(podA.uid).length > 0; i++) {
      server.notify(podA.uid, { type: 'from-the-future', payload: 'x'.repeat(16 * 1024) });
      most = Math.max(most, ...server.sessions(podA.uid).map((s) => s.unsentBytes));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await ended(stuck);
    expect(most).toBeGreaterThan(maxUnsentBytes / 2); // it did pile up…
    expect(most).toBeLessThanOrEqual(maxUnsentBytes); // …to the bound, never past it
    expect(await limitCount('unsent-bytes')).toBe(1);
    await checkpointQuietPod(quiet, 'tenant-b/after-unsent');
  });

  it('holds a ping flood from a client that never reads to the bound even with the rate limits lifted, and another pod checkpoints meanwhile', async () => {
    const unlimited = Number.MAX_SAFE_INTEGER;
    await startServer({
      limits: {
        requestBurst: unlimited,
        requestsPerSecond: unlimited,
        receiveBurstBytes: unlimited,
        receiveBytesPerSecond: unlimited,
        receiveBurstMessages: unlimited,
        receiveMessagesPerSecond: unlimited,
      },
    });
    const quiet = await quietProcess();
    const flooder = await raw(podA, { read: false });
    const ping = textFrame({ type: 'ping', id: 'f'.repeat(MAX_ID_LENGTH) });
    const burst = Buffer.concat(Array.from({ length: 256 }, () => ping));
    let most = 0;
    const sample = setInterval(() => (most = Math.max(most, ...server.sessions(podA.uid).map((s) => s.unsentBytes))), 1);
    const checkpointed = checkpointQuietPod(quiet, 'tenant-b/during-flood');
    try {
      while (await flooder.write(burst));
      await flooder.ended;
    } finally {
      clearInterval(sample);
    }
    await checkpointed;
    expect(most).toBeLessThanOrEqual(DEFAULT_CONNECTION_LIMITS.maxUnsentBytes);
    expect(await limitCount('unsent-bytes')).toBe(1);
  });
});

describe('connections per pod', () => {
  it('closes connections past the cap at once, counts them, and accepts again when one goes', async () => {
    await startServer({ maxConnectionsPerPod: 3 });
    await raw(podA);
    await raw(podA, { hello: false });
    const notUpgraded = await connectSocket(socketOf(podA));
    const refused = await connectSocket(socketOf(podA)).then(
      (socket) => new Promise<string>((resolve) => socket.once('close', () => resolve('closed'))),
      () => 'closed',
    );
    expect(refused).toBe('closed');
    expect(await limitCount('connections-per-pod')).toBe(1);
    expect(server.sessions(podA.uid)).toHaveLength(1);

    // Another pod's socket is not affected; and the pod connects again once one of its own goes.
    await raw(podB);
    notUpgraded.destroy();
    await waitFor(async () => (await raw(podA).then(() => true, () => false)) || undefined, { what: 'a connection accepted again' });
  });
});

describe('upgrade time', () => {
  it('destroys a connection that does not finish its upgrade in time, and a prepare waits for it no longer', async () => {
    await startServer({ limits: { setupTimeoutMs: 300 } });
    const hooks = new CheckpointHooks({ socketPath: socketOf(podA), podUid: podA.uid, container: 'app', logger: silentHookLogger });
    clients.push(hooks);
    const connected = new Promise((resolve) => hooks.once('connected', resolve));
    hooks.start();
    await connected;
    // Half an upgrade request, then nothing: a socket CRIU would refuse, held open by the pod.
    const stalled = await connectSocket(socketOf(podA));
    stalled.write(`GET ${protocol.PROTOCOL_PATH} HTTP/1.1\r\nHost: agent\r\n`);
    const gone = new Promise((resolve) => stalled.once('close', resolve));
    const started = performance.now();
    const result = await server.prepare(podA.uid, { checkpointId: 'tenant-a/ckpt-1', timeoutMs: 10_000 });
    // Counted before the socket is destroyed: the prepare waited for it, but not for its 10 s.
    expect(await limitCount('upgrade-time')).toBe(1);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(result.status, result.status === 'failed' ? result.reasons.join() : '').toBe('ready');
    await gone;
    await server.finish(podA.uid, 'tenant-a/ckpt-1', 'done');
  });

  it('counts the upgrade in the hello timeout, and cuts a client that answers neither hello nor the close', async () => {
    await startServer({ limits: { setupTimeoutMs: 300, closeGraceMs: 200 } });
    const silent = await raw(podA, { read: false, hello: false });
    const started = performance.now();
    const result = await server.prepare(podA.uid, { checkpointId: 'tenant-a/ckpt-2', timeoutMs: 10_000 });
    expect(result).toMatchObject({ status: 'ready', sessions: [] });
    await ended(silent);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(await metricsText()).toMatch(/cryo_hook_protocol_errors_total\{code="hello-required"\} 1/);
    await server.finish(podA.uid, 'tenant-a/ckpt-2', 'done');
  });
});
