/**
 * One connection from a process in a pod: the handshake, heartbeats, and the prepare requests
 * sent on it. The pod is fixed by the socket the connection came through; what the process says
 * can never make it another pod's.
 */
import { EventEmitter } from 'node:events';
import type { WebSocket, RawData } from 'ws';
import { protocol } from '@cryo/hook-sdk';
import type { HookPod } from './hook-pod.ts';
import { validateHello, type ValidHello } from './hello-validation.ts';

export type SessionAnswer =
  | { kind: 'ready'; hookDurationMs: number }
  | { kind: 'failed'; hookDurationMs: number; errors: protocol.HookErrorReport[] }
  | { kind: 'disconnected' };

export interface SessionEvents {
  /** The handshake is done; `answer` was sent. */
  established: [answer: protocol.HandshakeAnswer];
  closed: [code: number, reason: string];
  protocolError: [code: protocol.ErrorCode, message: string];
}

interface PendingPrepare {
  checkpointId: string;
  resolve: (answer: SessionAnswer) => void;
}

export interface HookSessionOptions {
  heartbeatIntervalMs: number;
  /** Decides welcome / resumed / restored, or refuses the hello. */
  answerHello: (session: HookSession, hello: ValidHello) => protocol.HandshakeAnswer | protocol.ProtocolError;
}

let nextRequestId = 0;

export class HookSession extends EventEmitter<SessionEvents> {
  readonly pod: HookPod;
  readonly connectedAt = Date.now();
  hello: ValidHello | null = null;
  answer: protocol.HandshakeAnswer | null = null;
  private readonly ws: WebSocket;
  private readonly options: HookSessionOptions;
  private readonly pending = new Map<string, PendingPrepare>();
  private lastHeardAt = performance.now();
  private heartbeat: NodeJS.Timeout | undefined;
  private helloTimer: NodeJS.Timeout | undefined;
  private closedWith: { code: number; reason: string } | null = null;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket, pod: HookPod, options: HookSessionOptions) {
    super();
    this.ws = ws;
    this.pod = pod;
    this.options = options;
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        clearInterval(this.heartbeat);
        clearTimeout(this.helloTimer);
        for (const [, request] of this.pending) request.resolve({ kind: 'disconnected' });
        this.pending.clear();
        this.emit('closed', code, this.closedWith.reason);
        resolve(this.closedWith);
      });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    // Socket errors end in 'close'; without a listener they would be thrown.
    ws.on('error', () => {});
    this.helloTimer = setTimeout(() => this.refuse('hello-required', `send hello within ${protocol.HELLO_TIMEOUT_MS} ms of connecting`), protocol.HELLO_TIMEOUT_MS);
    this.helloTimer.unref();
  }

  get isOpen(): boolean {
    return this.closedWith === null;
  }

  get sessionId(): string {
    return this.hello?.sessionId ?? '';
  }

  /** Resolves when the connection is closed (at once if it already is). */
  closed(): Promise<{ code: number; reason: string }> {
    return this.closedPromise;
  }

  /** Sends `prepare`; resolves with the process's answer, or `disconnected` if it went away first. */
  prepare(request: { checkpointId: string; reason: string; timeoutMs: number }): Promise<SessionAnswer> {
    if (!this.isOpen) return Promise.resolve({ kind: 'disconnected' });
    const id = `p-${++nextRequestId}`;
    const answer = new Promise<SessionAnswer>((resolve) => this.pending.set(id, { checkpointId: request.checkpointId, resolve }));
    this.send({
      type: 'prepare',
      id,
      checkpointId: request.checkpointId,
      reason: request.reason,
      deadline: new Date(Date.now() + request.timeoutMs).toISOString(),
      timeoutMs: Math.round(request.timeoutMs),
    } satisfies protocol.Prepare);
    return answer;
  }

  /** Sends any message (for example a type a newer client knows). */
  send(message: object): void {
    if (this.isOpen) this.ws.send(JSON.stringify(message));
  }

  close(code: number, reason: string): void {
    if (this.isOpen) this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastHeardAt = performance.now();
    if (isBinary) return this.refuse('bad-message', 'binary frames are not part of the protocol; send JSON in text frames');
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const parsed = protocol.parseMessage(text);
    if ('error' in parsed) return this.refuse('bad-message', parsed.error);
    const message = parsed.message;
    if (this.hello === null) return this.onHello(message);
    switch (message.type) {
      case 'ready':
      case 'failed':
        return this.onAnswer(message);
      case 'ping':
        return this.send({ type: 'pong', id: protocol.stringField(message.id) });
      default:
        // pong only refreshes lastHeardAt; unknown types are ignored for forward compatibility.
        return undefined;
    }
  }

  private onHello(message: Record<string, unknown> & { type: string }): void {
    if (message.type !== 'hello') return this.refuse('hello-required', `the first message must be hello, got "${message.type}"`);
    const validated = validateHello(message);
    if ('error' in validated) return this.refuse('bad-message', validated.error);
    clearTimeout(this.helloTimer);
    const answer = this.options.answerHello(this, validated.hello);
    if (answer.type === 'error') {
      this.send(answer);
      this.emit('protocolError', answer.code, answer.message);
      this.close(answer.code === 'unsupported-version' ? protocol.CloseCode.unsupportedVersion : protocol.CloseCode.badMessage, answer.code);
      return;
    }
    this.hello = validated.hello;
    this.answer = answer;
    this.send(answer);
    this.startHeartbeat();
    this.emit('established', answer);
  }

  private onAnswer(message: Record<string, unknown>): void {
    const id = typeof message.id === 'string' ? message.id : '';
    const request = this.pending.get(id);
    if (request === undefined) {
      this.emit('protocolError', 'unknown-request', `no prepare "${id}" was sent on this connection`);
      this.send({ type: 'error', code: 'unknown-request', id, message: `no prepare "${id}" was sent on this connection` } satisfies protocol.ProtocolError);
      return;
    }
    this.pending.delete(id);
    const hookDurationMs = typeof message.hookDurationMs === 'number' && Number.isFinite(message.hookDurationMs) ? message.hookDurationMs : 0;
    if (message.type === 'ready') {
      request.resolve({ kind: 'ready', hookDurationMs });
      return;
    }
    const errors = Array.isArray(message.errors)
      ? message.errors.slice(0, 100).map((e: unknown) => {
          const entry = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
          return { hook: protocol.stringField(entry.hook), message: protocol.stringField(entry.message).slice(0, 1000), timedOut: entry.timedOut === true };
        })
      : [];
    request.resolve({ kind: 'failed', hookDurationMs, errors });
  }

  private startHeartbeat(): void {
    const interval = this.options.heartbeatIntervalMs;
    let sequence = 0;
    this.heartbeat = setInterval(() => {
      // A process busy in its hooks is bounded by the prepare deadline, not by heartbeats.
      if (this.pending.size === 0 && performance.now() - this.lastHeardAt > 2 * interval) {
        this.close(protocol.CloseCode.heartbeatTimeout, 'heartbeat timeout');
        setTimeout(() => this.terminate(), 1_000).unref();
        return;
      }
      this.send({ type: 'ping', id: `h-${++sequence}` });
    }, interval);
    this.heartbeat.unref();
  }

  private refuse(code: protocol.ErrorCode, message: string): void {
    this.emit('protocolError', code, message);
    this.send({ type: 'error', code, message } satisfies protocol.ProtocolError);
    this.close(code === 'hello-required' ? protocol.CloseCode.helloRequired : protocol.CloseCode.badMessage, code);
  }
}
