/**
 * For the hook server's tests: a WebSocket client written by hand on a unix socket, so a test can
 * do what no well-behaved library does: send malformed frames, stop reading, stall its upgrade.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { protocol } from '@cryo/hook-sdk';

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameOptions {
  fin?: boolean;
  /** RSV1–3 bits (0–7); non-zero is a protocol error without an extension. */
  rsv?: number;
  /** Clients must mask; false sends an unmasked frame. */
  masked?: boolean;
}

/** One client frame. The mask key is zero, so a frame built once can be written many times cheaply. */
export function clientFrame(opcode: number, payload: Buffer | string, { fin = true, rsv = 0, masked = true }: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const length = data.length;
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0xf);
  header[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) header.writeUInt16BE(length, 2);
  if (lengthBytes === 8) header.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([header, data]);
}

export const textFrame = (message: object | string, options?: FrameOptions): Buffer =>
  clientFrame(Opcode.text, typeof message === 'string' ? message : JSON.stringify(message), options);

export function helloMessage(sessionId: string, podUid: string): protocol.Hello {
  return { type: 'hello', protocol: 1, sessionId, pid: 7, container: 'app', podUid, restoreCount: 0, pendingCheckpoint: null };
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

export interface RawConnection {
  socket: net.Socket;
  /** The frames the server sent, while the connection reads (it answers a close frame and ends). */
  frames: ServerFrame[];
  /** Text frames as JSON. */
  messages(): Record<string, unknown>[];
  /** The code of the server's close frame, if one arrived. */
  closeCode(): number | undefined;
  /** Resolves when the socket is closed, by either side. */
  ended: Promise<void>;
  /** Waits for a text message matching `predicate` (or one already received), the end of the connection, or the timeout. */
  until(predicate: (message: Record<string, unknown>) => boolean, timeoutMs: number): Promise<'received' | 'ended' | 'timeout'>;
  /** Writes, waiting for the socket to drain; false once the socket is gone. */
  write(data: Buffer): Promise<boolean>;
}

const UPGRADE_REQUEST =
  `GET ${protocol.PROTOCOL_PATH} HTTP/1.1\r\nHost: agent\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Connects without upgrading: the test writes whatever it wants, or nothing. */
export async function connectSocket(socketPath: string): Promise<net.Socket> {
  const socket = net.connect({ path: socketPath });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error(`connection to ${socketPath} closed before it was made`)));
  });
  return socket;
}

/**
 * Connects and upgrades. With `read: false` the client stops reading once upgraded, as a process
 * that never reads its socket: what the server sends piles up in the kernel, then in the server.
 */
export async function connectRaw(socketPath: string, { read = true }: { read?: boolean } = {}): Promise<RawConnection> {
  const socket = await connectSocket(socketPath);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let received = Buffer.alloc(0);
  const rest = await new Promise<Buffer>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (read) socket.pause(); // until the frame reader below is attached
      const head = received.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
      else resolve(received.subarray(end + 4));
    };
    socket.on('data', onData);
    void ended.then(() => reject(new Error('closed during the upgrade')));
    socket.write(UPGRADE_REQUEST);
  });
  const frames: ServerFrame[] = [];
  const arrivals = new EventEmitter<{ frame: [] }>();
  let isEnded = false;
  void ended.then(() => {
    isEnded = true;
    arrivals.emit('frame');
  });
  if (read) {
    let buffered = rest;
    const parse = () => {
      for (;;) {
        const frame = parseServerFrame(buffered);
        if (frame === null) return;
        frames.push(frame.frame);
        buffered = buffered.subarray(frame.size);
        arrivals.emit('frame');
        // Completes a close the server started, as RFC 6455 clients do.
        if (frame.frame.opcode === Opcode.close) socket.end(clientFrame(Opcode.close, frame.frame.payload.subarray(0, 2)));
      }
    };
    parse();
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      parse();
    });
    socket.resume();
  } else {
    socket.pause();
  }
  const messages = () => frames.filter((f) => f.opcode === Opcode.text).map((f) => JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>);
  return {
    socket,
    frames,
    messages,
    until: (predicate, timeoutMs) =>
      new Promise((resolve) => {
        const check = () => {
          const outcome = messages().some(predicate) ? 'received' : isEnded ? 'ended' : null;
          if (outcome !== null) done(outcome);
        };
        const done = (outcome: 'received' | 'ended' | 'timeout') => {
          clearTimeout(timer);
          arrivals.off('frame', check);
          resolve(outcome);
        };
        const timer = setTimeout(() => done('timeout'), timeoutMs);
        arrivals.on('frame', check);
        check();
      }),
    closeCode: () => {
      const close = frames.find((f) => f.opcode === Opcode.close);
      return close === undefined || close.payload.length < 2 ? undefined : close.payload.readUInt16BE(0);
    },
    ended,
    write: (data) => writeDrained(socket, data),
  };
}

export async function writeDrained(socket: net.Socket, data: Buffer): Promise<boolean> {
  if (socket.destroyed || !socket.writable) return false;
  if (socket.write(data)) return true;
  return new Promise((resolve) => {
    const done = (drained: boolean) => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(drained);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

function parseServerFrame(data: Buffer): { frame: ServerFrame; size: number } | null {
  if (data.length < 2) return null;
  const short = data[1] & 0x7f;
  const lengthBytes = short === 126 ? 2 : short === 127 ? 8 : 0;
  if (data.length < 2 + lengthBytes) return null;
  const length = lengthBytes === 0 ? short : lengthBytes === 2 ? data.readUInt16BE(2) : Number(data.readBigUInt64BE(2));
  const size = 2 + lengthBytes + length;
  if (data.length < size) return null;
  return { frame: { opcode: data[0] & 0xf, payload: Buffer.from(data.subarray(2 + lengthBytes, size)) }, size };
}
