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
import { MAX_FRAME_HEADER_BYTES, MAX_ID_LENGTH, TokenBucket, type HookConnectionLimits, type HookLimit } from './hook-limits.ts';

export type SessionAnswer =
  | { kind: 'ready'; hookDurationMs: number }
  | { kind: 'failed'; hookDurationMs: number; errors: protocol.HookErrorReport[] }
  | { kind: 'disconnected' };

export interface SessionEvents {
  /** The handshake is done; `answer` was sent. */
  established: [answer: protocol.HandshakeAnswer];
  closed: [code: number, reason: string];
  protocolError: [code: protocol.ErrorCode, message: string];
  /** The connection went past a limit and was closed or cut (after a protocolError, if one was sent). */
  limitExceeded: [limit: HookLimit, message: string];
}

interface PendingPrepare {
  checkpointId: string;
  resolve: (answer: SessionAnswer) => void;
}

export interface HookSessionOptions {
  heartbeatIntervalMs: number;
  limits: HookConnectionLimits;
  /** performance.now() by which a valid hello must have arrived (counted from accept, upgrade included). */
  helloDeadline: number;
  /** Decides welcome / resumed / restored, or refuses the hello. */
  answerHello: (session: HookSession, hello: ValidHello) => protocol.HandshakeAnswer | protocol.ProtocolError;
}

let nextRequestId = 0;

// What a `failed` report may carry into logs and the Checkpoint's status.
const MAX_REPORTED_ERRORS = 100;
const MAX_HOOK_NAME_LENGTH = 256;
const MAX_ERROR_MESSAGE_LENGTH = 1000;

// ws reports a message past its receive limits with these codes, then closes (1009, 1008).
const WEBSOCKET_LIMIT_ERRORS: Record<string, HookLimit> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 'message-size',
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 'message-parts',
};

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
  private closeGraceTimer: NodeJS.Timeout | undefined;
  private closedWith: { code: number; reason: string } | null = null;
  /** Requests this connection may still have answered now (ping, unknown-request). */
  private readonly answerable: TokenBucket;
  /** Bytes and messages this connection may still send before reading pauses. */
  private readonly receivableBytes: TokenBucket;
  private readonly receivableMessages: TokenBucket;
  private resumeTimer: NodeJS.Timeout | undefined;
  private readonly closedPromise: Promise<{ code: number; reason: string }>;

  constructor(ws: WebSocket, pod: HookPod, options: HookSessionOptions) {
    super();
    this.ws = ws;
    this.pod = pod;
    this.options = options;
    this.answerable = new TokenBucket(options.limits.requestBurst, options.limits.requestsPerSecond);
    this.receivableBytes = new TokenBucket(options.limits.receiveBurstBytes, options.limits.receiveBytesPerSecond);
    this.receivableMessages = new TokenBucket(options.limits.receiveBurstMessages, options.limits.receiveMessagesPerSecond);
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        clearInterval(this.heartbeat);
        clearTimeout(this.helloTimer);
        clearTimeout(this.closeGraceTimer);
        clearTimeout(this.resumeTimer);
        for (const [, request] of this.pending) request.resolve({ kind: 'disconnected' });
        this.pending.clear();
        this.emit('closed', code, this.closedWith.reason);
        resolve(this.closedWith);
      });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    // The server does not answer ping frames by itself (autoPong: false): they count as requests.
    ws.on('ping', (data) => this.onPingFrame(data));
    ws.on('pong', (data) => this.received(data.length));
    // Socket and framing errors end in 'close'; without a listener they would be thrown.
    ws.on('error', (error: Error & { code?: string }) => {
      const limit = WEBSOCKET_LIMIT_ERRORS[error.code ?? ''];
      if (limit !== undefined) this.emit('limitExceeded', limit, error.message);
    });
    const setupTimeoutMs = options.limits.setupTimeoutMs;
    this.helloTimer = setTimeout(
      () => this.refuse('hello-required', `send hello within ${setupTimeoutMs} ms of connecting`),
      Math.max(0, options.helloDeadline - performance.now()),
    );
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

  /** How many bytes are queued for this connection, not yet taken by the kernel. */
  get unsentBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Sends any message (for example a type a newer client knows). A message that would take the
   * bytes queued for a client that does not read past the bound cuts the connection instead.
   */
  send(message: object): void {
    if (!this.answering) return;
    const text = JSON.stringify(message);
    if (this.fitsUnsent(Buffer.byteLength(text))) this.ws.send(text);
  }

  /** Starts the closing handshake; a client that does not answer it within the close grace is cut. */
  close(code: number, reason: string): void {
    if (!this.isOpen) return;
    this.ws.close(code, reason);
    // ws would wait 30 s, holding the socket and any prepare waiting for it to go.
    this.closeGraceTimer ??= setTimeout(() => this.terminate(), this.options.limits.closeGraceMs);
    this.closeGraceTimer.unref();
  }

  terminate(): void {
    this.ws.terminate();
  }

  private fitsUnsent(payloadBytes: number): boolean {
    const unsent = this.ws.bufferedAmount + payloadBytes + MAX_FRAME_HEADER_BYTES;
    if (unsent <= this.options.limits.maxUnsentBytes) return true;
    this.emit('limitExceeded', 'unsent-bytes', `${unsent} bytes would be queued for a client that does not read; at most ${this.options.limits.maxUnsentBytes}`);
    // No close frame: it would only queue behind what the client does not read.
    this.terminate();
    return false;
  }

  /** False (and the connection refused) when the client asks for answers faster than the limit. */
  private mayAnswer(what: string): boolean {
    if (this.answerable.take()) return true;
    const { requestBurst, requestsPerSecond } = this.options.limits;
    this.refuseOverLimit('request-rate', `too many requests (${what}): at most ${requestBurst} at once, then ${requestsPerSecond} per second`);
    return false;
  }

  /** False once either side started closing: ws still delivers what was read before. */
  private get answering(): boolean {
    return this.isOpen && this.ws.readyState === this.ws.OPEN;
  }

  /**
   * Counts a message (or control frame) that arrived; past the receive rate, stops reading until
   * the debt is paid. What one read brought is still handled: the debt delays the next read.
   */
  private received(bytes: number): void {
    this.pauseReading(Math.max(this.receivableBytes.spend(bytes), this.receivableMessages.spend(1)));
  }

  private pauseReading(waitMs: number): void {
    if (waitMs === 0 || this.resumeTimer !== undefined) return;
    this.ws.pause();
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      // Messages handled while paused may have added to the debt.
      const stillOwedMs = Math.max(this.receivableBytes.spend(0), this.receivableMessages.spend(0));
      if (stillOwedMs > 0) this.pauseReading(stillOwedMs);
      else this.ws.resume();
    }, waitMs);
  }

  private onPingFrame(data: Buffer): void {
    this.lastHeardAt = performance.now();
    this.received(data.length);
    if (!this.answering || !this.mayAnswer('WebSocket ping frames')) return;
    if (this.fitsUnsent(data.length)) this.ws.pong(data);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastHeardAt = performance.now();
    const bytes = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    this.received(bytes);
    if (!this.answering) return;
    if (isBinary) return this.refuse('bad-message', 'binary frames are not part of the protocol; send JSON in text frames');
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
    const parsed = protocol.parseMessage(text);
    if ('error' in parsed) return this.refuse('bad-message', parsed.error);
    const message = parsed.message;
    if (typeof message.id === 'string' && message.id.length > MAX_ID_LENGTH) {
      return this.refuseOverLimit('id-length', `an id may have at most ${MAX_ID_LENGTH} characters; this one has ${message.id.length}`);
    }
    if (this.hello === null) return this.onHello(message);
    switch (message.type) {
      case 'ready':
      case 'failed':
        return this.onAnswer(message);
      case 'ping':
        if (!this.mayAnswer('ping')) return undefined;
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
      if (!this.mayAnswer(`${String(message.type)} for a prepare never sent`)) return;
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
      ? message.errors.slice(0, MAX_REPORTED_ERRORS).map((e: unknown) => {
          const entry = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
          return {
            hook: protocol.stringField(entry.hook).slice(0, MAX_HOOK_NAME_LENGTH),
            message: protocol.stringField(entry.message).slice(0, MAX_ERROR_MESSAGE_LENGTH),
            timedOut: entry.timedOut === true,
          };
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
        // A client that does not answer the close either is cut after the close grace.
        this.close(protocol.CloseCode.heartbeatTimeout, 'heartbeat timeout');
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

  /** A protocol limit the client broke: a bad-message like any other, counted under its limit too. */
  private refuseOverLimit(limit: HookLimit, message: string): void {
    this.emit('limitExceeded', limit, message);
    this.refuse('bad-message', message);
  }
}
