/**
 * A bounded fuzz of one pod's hook socket: a few thousand malformed requests, frames and messages,
 * drawn from a seeded generator (the seed is printed with every failure, so it can be replayed),
 * against the real server over its unix socket. The server must never crash, must answer every
 * malformed input with a protocol error or a close, must keep serving inputs that turned out
 * valid, and another pod's process must checkpoint all the while.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '@cryo/common';
import { CheckpointHooks, protocol, silentHookLogger } from '@cryo/hook-sdk';
import { HookServer } from './hook-server.ts';
import { validateHello } from './hello-validation.ts';
import { MAX_ID_LENGTH, WEBSOCKET_RECEIVE_LIMITS } from './hook-limits.ts';
import type { HookPod } from './hook-pod.ts';
import { clientFrame, connectRaw, connectSocket, helloMessage, Opcode, textFrame, writeDrained, type RawConnection } from './raw-websocket-client.ts';

const SEED = 0xc0ffee;
const CASES = 3_000;
const LANES = 4;
/** How long one case may take to be answered: past the setup timeout and close grace, far more than a healthy server needs. */
const CASE_TIMEOUT_MS = 7_000;

const fuzzedPod: HookPod = { uid: randomUUID(), name: 'fuzzed-0', namespace: 'tenant-a' };
const otherPod: HookPod = { uid: randomUUID(), name: 'other-0', namespace: 'tenant-b' };

let dir: string;
let server: HookServer;
let other: CheckpointHooks;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hook-fuzz-'));
  server = new HookServer({ hostHooksDir: dir, logger: silentLogger() });
  await server.sync([fuzzedPod, otherPod]);
  other = new CheckpointHooks({ socketPath: server.socketPath(otherPod.uid)!, podUid: otherPod.uid, container: 'app', logger: silentHookLogger });
  other.register({ name: 'pool', beforeCheckpoint: () => {}, afterRestore: () => {} });
  const connected = new Promise((resolve) => other.once('connected', resolve));
  other.start();
  await connected;
});

afterAll(async () => {
  await other.stop();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** mulberry32: small, seeded, good enough to spread inputs. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * What the server must do with a case's input:
 * - `protocol-error`: an `error` message, then close 4002 or 4003 (a well-formed frame with content the protocol refuses);
 * - `closed`: a close (any documented code) or the socket ended (a broken frame or HTTP request);
 * - `served`: nothing closes, and a ping sent after it is answered (the input was valid after all).
 */
type Expectation = 'protocol-error' | 'closed' | 'served';

interface FuzzCase {
  name: string;
  /** Written before any WebSocket upgrade: the raw bytes of a broken HTTP request. */
  http?: Buffer;
  /** Say hello before the input. */
  hello?: boolean;
  input?: Buffer;
  /** Half-close after the input (a truncated frame would otherwise wait for its missing bytes). */
  end?: boolean;
  expect: Expectation;
}

const CLOSE_CODES: readonly number[] = [1000, 1002, 1007, 1008, 1009, protocol.CloseCode.badMessage, protocol.CloseCode.helloRequired];
const SAMPLE_MESSAGES: readonly object[] = [
  helloMessage('s'.repeat(32), fuzzedPod.uid),
  { type: 'ping', id: 'x-1' },
  { type: 'pong', id: 'h-1' },
  { type: 'ready', id: 'p-1', checkpointId: 'tenant-a/c', hookDurationMs: 1.5 },
  { type: 'failed', id: 'p-1', checkpointId: 'tenant-a/c', hookDurationMs: 2, errors: [{ hook: 'db', message: 'no', timedOut: false }] },
  { type: 'from-the-future', nested: { list: [1, 'two', null, true] } },
];

function generator(random: () => number) {
  const int = (max: number) => Math.floor(random() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)));
  const jsonish = (length: number) => Array.from({ length }, () => pick(['{', '}', '[', ']', '"', ':', ',', 'type', 'id', 'null', '1e999', '-0', '\\u0000', '\\ud800', ' ', 'é', '\n'])).join('');
  const anyValue = (): unknown => pick([null, true, -1, 1.5, 2 ** 60, '', 'x'.repeat(int(300)), [], {}, [1, [2, [3]]], { a: { b: 1 } }]);

  /** What the server does with a text frame of these bytes, by the protocol's rules. */
  function judgeText(data: Buffer, hello: boolean): Expectation {
    if (!isUtf8(data)) return 'closed'; // 1007
    const parsed = protocol.parseMessage(data.toString('utf8'));
    if ('error' in parsed) return 'protocol-error';
    const { message } = parsed;
    if (typeof message.id === 'string' && message.id.length > MAX_ID_LENGTH) return 'protocol-error';
    if (hello) return 'served';
    if (message.type !== 'hello' || 'error' in validateHello(message)) return 'protocol-error';
    return 'served'; // a valid hello: the probe ping is then answered
  }

  const text = (hello: boolean, name: string, data: Buffer): FuzzCase => ({ name, hello, input: clientFrame(Opcode.text, data), expect: judgeText(data, hello) });

  const kinds: Array<() => FuzzCase> = [
    // Messages: mutated, truncated, mistyped, or not messages at all.
    () => {
      const data = Buffer.from(JSON.stringify(pick(SAMPLE_MESSAGES)));
      for (let flips = 1 + int(4); flips > 0; flips--) data[int(data.length)] = int(256);
      return text(random() < 0.8, 'a message with bytes flipped', data);
    },
    () => {
      const json = JSON.stringify(pick(SAMPLE_MESSAGES));
      return text(random() < 0.8, 'a truncated message', Buffer.from(json.slice(0, int(json.length))));
    },
    () => text(random() < 0.8, 'JSON-like noise', Buffer.from(jsonish(1 + int(40)))),
    () => text(random() < 0.5, 'random bytes as text', bytes(1 + int(200))),
    () => text(true, 'not an object', Buffer.from(JSON.stringify(pick([null, 7, 'hello', [{ type: 'ping' }], true, -0.5])))),
    () => text(true, 'a type that is not a string', Buffer.from(JSON.stringify({ type: anyValue(), id: 'x' }))),
    () => text(false, 'a hello with a field of the wrong type', Buffer.from(JSON.stringify({ ...helloMessage('s'.repeat(32), fuzzedPod.uid), [pick(['protocol', 'sessionId', 'pid', 'container', 'podUid', 'restoreCount', 'pendingCheckpoint', 'client'])]: anyValue() }))),
    () => text(false, 'a message before hello', Buffer.from(JSON.stringify(pick(SAMPLE_MESSAGES.slice(1))))),
    () => text(true, 'an id too long', Buffer.from(JSON.stringify({ type: pick(['ping', 'ready', 'failed', 'pong', 'new']), id: 'i'.repeat(MAX_ID_LENGTH + 1 + int(5000)) }))),
    () => text(true, 'nested deeply', Buffer.from('['.repeat(1 + int(20_000)) + ']'.repeat(int(20_000)))),
    () => text(true, 'fields of any type', Buffer.from(JSON.stringify({ type: pick(['ready', 'failed', 'ping', 'pong']), id: anyValue(), errors: anyValue(), hookDurationMs: anyValue(), checkpointId: anyValue() }))),
    // Frames the WebSocket layer refuses.
    () => ({ name: 'a binary frame', hello: true, input: clientFrame(Opcode.binary, bytes(int(100))), expect: 'protocol-error' }),
    () => ({ name: 'a reserved opcode', hello: random() < 0.5, input: clientFrame(pick([3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), bytes(int(20))), expect: 'closed' }),
    () => ({ name: 'RSV bits set', hello: random() < 0.5, input: textFrame({ type: 'ping', id: 'r' }, { rsv: 1 + int(7) }), expect: 'closed' }),
    () => ({ name: 'an unmasked frame', hello: random() < 0.5, input: textFrame({ type: 'ping', id: 'u' }, { masked: false }), expect: 'closed' }),
    () => ({ name: 'a control frame over 125 bytes', hello: true, input: clientFrame(pick([Opcode.ping, Opcode.pong, Opcode.close]), bytes(126 + int(200))), expect: 'closed' }),
    () => ({ name: 'a fragmented control frame', hello: true, input: clientFrame(Opcode.ping, 'x', { fin: false }), expect: 'closed' }),
    () => ({ name: 'a continuation with nothing to continue', hello: true, input: clientFrame(Opcode.continuation, '{}'), expect: 'closed' }),
    () => ({ name: 'a new message inside a fragmented one', hello: true, input: Buffer.concat([clientFrame(Opcode.text, '{"ty', { fin: false }), textFrame({ type: 'ping', id: 'n' })]), expect: 'closed' }),
    () => ({ name: 'too many fragments', hello: true, input: Buffer.concat(Array.from({ length: WEBSOCKET_RECEIVE_LIMITS.maxFragments + 1 }, (_, i) => clientFrame(i === 0 ? Opcode.text : Opcode.continuation, ' ', { fin: false }))), expect: 'closed' }),
    () => ({ name: 'a close code that may not be sent', hello: true, input: clientFrame(Opcode.close, closePayload(pick([0, 999, 1004, 1005, 1006, 1015, 2999, 5000]))), expect: 'closed' }),
    () => ({ name: 'a one-byte close payload', hello: true, input: clientFrame(Opcode.close, Buffer.from([3])), expect: 'closed' }),
    () => {
      const header = Buffer.from([0x81, 0xff, 0, 0, 0, 1 + int(255), 0, 0, 0, 0, 0, 0, 0, 0]);
      return { name: 'a length far over the message limit', hello: random() < 0.5, input: header, expect: 'closed' };
    },
    () => ({ name: 'a message one byte over the limit', hello: true, input: clientFrame(Opcode.text, Buffer.alloc(protocol.MAX_MESSAGE_BYTES + 1, 0x20)), expect: 'closed' }),
    () => {
      const frame = textFrame(pick(SAMPLE_MESSAGES));
      return { name: 'a truncated frame', hello: true, input: frame.subarray(0, int(frame.length)), end: true, expect: 'closed' };
    },
    () => ({ name: 'random bytes as frames', hello: random() < 0.5, input: bytes(1 + int(300)), end: true, expect: 'closed' }),
    // Broken HTTP before any upgrade.
    () => ({ name: 'random bytes instead of HTTP', http: bytes(1 + int(300)), expect: 'closed' }),
    () => ({ name: 'an upgrade without a key', http: Buffer.from(`GET ${protocol.PROTOCOL_PATH} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`), expect: 'closed' }),
    () => ({ name: 'another path', http: Buffer.from(`GET /${'x'.repeat(int(50))} HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n`), expect: 'closed' }),
    () => ({ name: 'headers over 16 KiB', http: Buffer.from(`GET ${protocol.PROTOCOL_PATH} HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(17_000)}\r\n\r\n`), expect: 'closed' }),
  ];
  return () => pick(kinds)();
}

function closePayload(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return payload;
}

async function settled<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one case; returns what went wrong, or null. */
async function run(fuzzCase: FuzzCase): Promise<string | null> {
  const socketPath = server.socketPath(fuzzedPod.uid)!;
  if (fuzzCase.http !== undefined) {
    const socket = await connectSocket(socketPath);
    socket.resume();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await writeDrained(socket, fuzzCase.http);
    const outcome = await settled(closed, CASE_TIMEOUT_MS);
    socket.destroy();
    return outcome === 'timeout' ? 'the server kept the connection open' : null;
  }
  let connection: RawConnection;
  try {
    connection = await connectRaw(socketPath);
  } catch (error) {
    return `the upgrade failed: ${(error as Error).message}`;
  }
  try {
    if (fuzzCase.hello === true) {
      await connection.write(textFrame(helloMessage(randomUUID().replaceAll('-', ''), fuzzedPod.uid)));
      const welcome = await connection.until((m) => m.type === 'welcome', CASE_TIMEOUT_MS);
      if (welcome !== 'received') return `no welcome: ${welcome}`;
    }
    await connection.write(fuzzCase.input!);
    if (fuzzCase.end === true) connection.socket.end();
    else await connection.write(textFrame({ type: 'ping', id: 'probe' }));
    const outcome = await connection.until((m) => m.type === 'pong' && m.id === 'probe', CASE_TIMEOUT_MS);
    const errors = connection.messages().filter((m) => m.type === 'error');
    const closeCode = connection.closeCode();
    if (fuzzCase.expect === 'served') return outcome === 'received' ? null : `expected it served, but: ${outcome}, close ${closeCode}`;
    if (outcome !== 'ended') return `expected a close, but: ${outcome}`;
    if (closeCode !== undefined && !CLOSE_CODES.includes(closeCode)) return `closed with an undocumented code ${closeCode}`;
    if (errors.some((e) => !['bad-message', 'hello-required'].includes(e.code as string))) return `unexpected error ${JSON.stringify(errors)}`;
    if (fuzzCase.expect === 'protocol-error' && (errors.length !== 1 || ![protocol.CloseCode.badMessage, protocol.CloseCode.helloRequired].includes(closeCode as 4002))) {
      return `expected an error message and close 4002/4003, got ${JSON.stringify(errors)} and close ${closeCode}`;
    }
    return null;
  } finally {
    connection.socket.destroy();
  }
}

it(`survives ${CASES} malformed inputs on one pod's socket, answering each with a protocol error or a close, while another pod checkpoints`, async () => {
  const next = generator(seededRandom(SEED));
  const cases = Array.from({ length: CASES }, (_, index) => ({ index, ...next() }));
  const failures: string[] = [];
  const counts = new Map<Expectation, number>();
  let checkpoints = 0;
  let position = 0;
  const started = performance.now();
  const lane = async () => {
    while (position < cases.length) {
      const fuzzCase = cases[position++];
      counts.set(fuzzCase.expect, (counts.get(fuzzCase.expect) ?? 0) + 1);
      const failure = await run(fuzzCase);
      if (failure !== null) failures.push(`case ${fuzzCase.index} (seed ${SEED}), ${fuzzCase.name}: ${failure}`);
    }
  };
  // The other pod checkpoints again and again while the fuzz runs.
  let fuzzing = true;
  const checkpointing = (async () => {
    while (fuzzing) {
      const id = `tenant-b/during-fuzz-${++checkpoints}`;
      const result = await server.prepare(otherPod.uid, { checkpointId: id, timeoutMs: 5_000 });
      expect(result.status, result.status === 'failed' ? result.reasons.join() : '').toBe('ready');
      const resumed = new Promise((resolve) => other.once('connected', resolve));
      await server.finish(otherPod.uid, id, 'done');
      await resumed;
    }
  })();
  await Promise.all(Array.from({ length: LANES }, lane));
  fuzzing = false;
  await checkpointing;

  console.log(`fuzz: ${CASES} cases in ${Math.round(performance.now() - started)} ms (${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}); the other pod checkpointed ${checkpoints} times`);
  expect(failures.slice(0, 20)).toEqual([]);
  expect(counts.get('served')).toBeGreaterThan(0);
  expect(checkpoints).toBeGreaterThan(1);
  // The fuzzed pod's socket still serves a well-behaved client.
  const good = await connectRaw(server.socketPath(fuzzedPod.uid)!);
  await good.write(textFrame(helloMessage(randomUUID().replaceAll('-', ''), fuzzedPod.uid)));
  expect(await good.until((m) => m.type === 'welcome', CASE_TIMEOUT_MS)).toBe('received');
  good.socket.destroy();
}, 120_000);
