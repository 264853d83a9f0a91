/**
 * The node agent's hook server: one socket per hook-enabled pod on this node, the sessions of the
 * processes connected to them, and the two calls the rest of the agent makes around a dump:
 * `prepare(pod, …)` (every addressed process runs its pre-checkpoint hooks and disconnects) and
 * `finish(pod, …)` (the socket accepts again; reconnecting processes learn the outcome).
 * docs/hook-protocol.md is the wire contract; docs/architecture.md shows where this sits.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { readdir, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '@cryo/common';
import { protocol } from '@cryo/hook-sdk';
import { describePod, POD_UID_PATTERN, type HookPod } from './hook-pod.ts';
import { PodSocketListener } from './pod-socket-listener.ts';
import { HookSession, type SessionAnswer } from './hook-session.ts';
import type { ValidHello } from './hello-validation.ts';
import type { HookMetrics } from './hook-metrics.ts';

export interface HookServerOptions {
  hostHooksDir: string;
  logger: Logger;
  metrics?: HookMetrics;
  socketMode?: number;
  dirMode?: number;
  heartbeatIntervalMs?: number;
  /** Protocol versions accepted in hello (tests narrow it). */
  protocols?: readonly number[];
  /** A checkpoint whose finish() never comes is ended as aborted after this long. */
  finishTimeoutMs?: number;
}

export interface PrepareOptions {
  checkpointId: string;
  reason?: string;
  timeoutMs: number;
  /** Only processes of these containers are asked (processes that did not say their container always are). */
  containers?: readonly string[];
}

export interface PreparedSession {
  sessionId: string;
  container: string;
  pid: number;
  hookDurationMs: number;
  /** Time from sending prepare to its `ready`, in ms. */
  readyAfterMs: number;
  /** Time from sending prepare to the connection being closed, in ms. */
  roundTripMs: number;
}

export type PrepareResult =
  | { status: 'ready'; sessions: PreparedSession[]; durationMs: number }
  | { status: 'failed'; reasons: string[]; sessions: PreparedSession[]; durationMs: number };

export type FinishOutcome = 'done' | 'aborted';

export interface SessionSummary {
  sessionId: string;
  container: string;
  pid: number;
  kind: protocol.HandshakeAnswer['type'];
  connectedAt: Date;
  client: string;
}

export interface HookServerEvents {
  /** A handshake finished with this answer: how the rest of the agent learns of restored copies. */
  session: [pod: HookPod, session: SessionSummary, answer: protocol.HandshakeAnswer];
}

export class HookPrepareError extends Error {
  override name = 'HookPrepareError';
}

interface PodState {
  pod: HookPod;
  listener: PodSocketListener;
  sessions: Set<HookSession>;
  /** Connections accepted but not yet upgraded to a session: sockets CRIU would refuse too. */
  upgrading: Set<net.Socket>;
  checkpoint: { id: string; finishTimer: NodeJS.Timeout } | null;
  /** Outcomes of recent checkpoints, answered to processes that reconnect with pendingCheckpoint. */
  outcomes: Map<string, FinishOutcome>;
  opening: Promise<void>;
}

const OUTCOMES_KEPT = 32;
const SESSION_PODS_KEPT = 10_000;

export class HookServer extends EventEmitter<HookServerEvents> {
  private readonly options: Required<Omit<HookServerOptions, 'metrics'>> & { metrics: HookMetrics | undefined };
  private readonly pods = new Map<string, PodState>();
  /** Which pod each session id was last seen in: tells a restored copy on the same node when it sends no podUid. */
  private readonly sessionPods = new Map<string, string>();
  private readonly http = createServer((_req, res) => {
    // connection: close, so a stray HTTP client does not keep a socket to the agent open.
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' }).end(`the hook protocol is served at ${protocol.PROTOCOL_PATH}\n`);
  });
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: protocol.MAX_MESSAGE_BYTES, perMessageDeflate: false });
  private closed = false;
  private readonly podBySocket = new WeakMap<net.Socket, PodState>();
  private readonly upgradeWaiters = new WeakMap<PodState, Array<() => void>>();

  constructor(options: HookServerOptions) {
    super();
    this.options = {
      hostHooksDir: options.hostHooksDir,
      logger: options.logger,
      metrics: options.metrics,
      socketMode: options.socketMode ?? 0o666,
      dirMode: options.dirMode ?? 0o755,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? protocol.DEFAULT_HEARTBEAT_INTERVAL_MS,
      protocols: options.protocols ?? protocol.SUPPORTED_PROTOCOLS,
      finishTimeoutMs: options.finishTimeoutMs ?? 15 * 60_000,
    };
    this.http.on('upgrade', (request: IncomingMessage, socket: net.Socket, head: Buffer) => {
      const state = this.podBySocket.get(socket);
      if (state === undefined || request.url?.split('?')[0] !== protocol.PROTOCOL_PATH) {
        socket.end(`HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthe hook protocol is served at ${protocol.PROTOCOL_PATH}\n`);
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => {
        this.attach(ws, state);
        this.settleUpgrade(state, socket);
      });
    });
    this.http.on('clientError', (_error, socket: net.Socket) => socket.destroy());
  }

  /** Reconciles the sockets with the hook-enabled pods of this node: opens new ones, removes the rest, including leftovers of an earlier agent. */
  async sync(pods: readonly HookPod[]): Promise<void> {
    await mkdir(this.options.hostHooksDir, { recursive: true, mode: 0o755 });
    const wanted = new Map(pods.map((pod) => [pod.uid, pod]));
    for (const uid of [...this.pods.keys()]) if (!wanted.has(uid)) await this.removePod(uid);
    for (const pod of pods) await this.addPod(pod);
    for (const entry of await readdir(this.options.hostHooksDir)) {
      if (POD_UID_PATTERN.test(entry) && !wanted.has(entry)) {
        this.options.logger.info({ podUid: entry }, 'removing the hook directory of a pod that is gone');
        await rm(path.join(this.options.hostHooksDir, entry), { recursive: true, force: true });
      }
    }
  }

  /** Opens the pod's socket (idempotent; updates name/namespace). */
  async addPod(pod: HookPod): Promise<void> {
    if (this.closed) return;
    const existing = this.pods.get(pod.uid);
    if (existing !== undefined) {
      existing.pod = pod;
      await existing.opening;
      return;
    }
    const state: PodState = {
      pod,
      listener: new PodSocketListener({
        hostHooksDir: this.options.hostHooksDir,
        podUid: pod.uid,
        socketMode: this.options.socketMode,
        dirMode: this.options.dirMode,
        onConnection: (socket) => this.onConnection(socket, state),
      }),
      sessions: new Set(),
      upgrading: new Set(),
      checkpoint: null,
      outcomes: new Map(),
      opening: Promise.resolve(),
    };
    this.pods.set(pod.uid, state);
    state.opening = state.listener.open().then(
      () => this.options.logger.info({ pod: describePod(pod), podUid: pod.uid, socket: state.listener.socketPath }, 'hook socket open'),
      (error: unknown) => {
        this.options.logger.error({ pod: describePod(pod), podUid: pod.uid, err: (error as Error).message }, 'cannot open the hook socket');
        throw error;
      },
    );
    await state.opening;
  }

  /** Closes the pod's socket and connections and removes its directory. */
  async removePod(uid: string): Promise<void> {
    const state = this.pods.get(uid);
    if (state === undefined) return;
    this.pods.delete(uid);
    if (state.checkpoint !== null) clearTimeout(state.checkpoint.finishTimer);
    await state.opening.catch(() => {});
    for (const session of state.sessions) session.close(protocol.CloseCode.goingAway, 'pod gone');
    await state.listener.remove();
    this.options.logger.info({ pod: describePod(state.pod), podUid: uid }, 'hook socket removed');
  }

  /** Where the pod's socket is on the host, if it has one. */
  socketPath(uid: string): string | undefined {
    return this.pods.get(uid)?.listener.socketPath;
  }

  sessions(uid: string): SessionSummary[] {
    const state = this.pods.get(uid);
    if (state === undefined) return [];
    return [...state.sessions].filter((s) => s.hello !== null && s.isOpen).map(summarize);
  }

  /** Sends a message to every connected process of the pod: for message types newer clients know. */
  notify(uid: string, message: { type: string } & Record<string, unknown>): number {
    const targets = [...(this.pods.get(uid)?.sessions ?? [])].filter((s) => s.hello !== null && s.isOpen);
    for (const session of targets) session.send(message);
    return targets.length;
  }

  /**
   * Asks every addressed process of the pod to prepare. Resolves `ready` once each answered ready
   * and closed its connection (CRIU may dump now), `failed` at the first failure, missed deadline
   * or disconnect. Either way the socket accepts no connections until finish().
   */
  async prepare(uid: string, options: PrepareOptions): Promise<PrepareResult> {
    const state = this.pods.get(uid);
    if (state === undefined) throw new HookPrepareError(`pod ${uid} has no hook socket on this node (not annotated cryo.dev/hooks: enabled, or not here)`);
    if (state.checkpoint !== null) {
      throw new HookPrepareError(`checkpoint ${state.checkpoint.id} of pod ${describePod(state.pod)} is still in progress; one checkpoint per pod at a time`);
    }
    if (!(options.timeoutMs > 0)) throw new HookPrepareError(`prepare needs a positive timeoutMs, got ${options.timeoutMs}`);
    const started = performance.now();
    const log = this.options.logger.child({ pod: describePod(state.pod), podUid: uid, checkpoint: options.checkpointId });
    state.checkpoint = {
      id: options.checkpointId,
      finishTimer: setTimeout(() => {
        log.warn({ afterMs: this.options.finishTimeoutMs }, 'finish() never came; ending the checkpoint as aborted');
        this.finish(uid, options.checkpointId, 'aborted').catch(() => {});
      }, this.options.finishTimeoutMs),
    };
    state.checkpoint.finishTimer.unref();
    await state.opening.catch(() => {});
    await state.listener.pause();

    const containers = options.containers === undefined ? null : new Set(options.containers);
    const addressed = (session: HookSession) =>
      containers === null || session.hello === null || session.hello.container === '' || containers.has(session.hello.container);
    const deadline = started + options.timeoutMs;
    const reasons: string[] = [];
    const prepared: PreparedSession[] = [];

    const one = async (session: HookSession): Promise<void> => {
      // A connection still in its handshake is a socket CRIU would refuse: wait for its hello or its end.
      if (session.hello === null) await Promise.race([onceEstablished(session), session.closed()]);
      if (!session.isOpen || !addressed(session)) return;
      const hello = session.hello!;
      const who = `process ${hello.pid} (container "${hello.container}", session ${hello.sessionId})`;
      const sentAt = performance.now();
      const answer: SessionAnswer = await session.prepare({
        checkpointId: options.checkpointId,
        reason: options.reason ?? '',
        timeoutMs: Math.max(1, deadline - sentAt),
      });
      if (answer.kind === 'disconnected') throw new HookPrepareError(`${who} disconnected without answering prepare`);
      if (answer.kind === 'failed') {
        const detail = answer.errors.map((e) => `${e.hook || '(unnamed hook)'}: ${e.message}${e.timedOut ? ' (timed out)' : ''}`).join('; ');
        throw new HookPrepareError(`${who} failed its pre-checkpoint hooks: ${detail || 'no detail given'}`);
      }
      const readyAfterMs = performance.now() - sentAt;
      await session.closed();
      const roundTripMs = performance.now() - sentAt;
      this.options.metrics?.prepareOverhead.observe(Math.max(0, roundTripMs - answer.hookDurationMs) / 1000);
      prepared.push({ sessionId: hello.sessionId, container: hello.container, pid: hello.pid, hookDurationMs: answer.hookDurationMs, readyAfterMs, roundTripMs });
    };

    // A connection accepted just before the socket stopped listening becomes a session (then it is
    // asked too) or goes away; either way it must be settled before the targets are known.
    const settled = this.upgradesSettled(state);
    const targets = () => [...state.sessions].filter((s) => s.isOpen);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HookPrepareError(`not every process was ready and disconnected within ${options.timeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      await Promise.race([settled.then(() => Promise.all(targets().map(one))), timeout]);
    } catch (error) {
      reasons.push((error as Error).message);
    } finally {
      clearTimeout(timer);
    }
    const durationMs = performance.now() - started;
    const status = reasons.length === 0 ? 'ready' : 'failed';
    this.options.metrics?.prepareDuration.labels(status).observe(durationMs / 1000);
    if (status === 'ready') {
      log.info({ processes: prepared.length, durationMs: round(durationMs) }, 'hooks ready; the pod may be dumped');
      return { status, sessions: prepared, durationMs };
    }
    log.warn({ reasons, durationMs: round(durationMs) }, 'hooks not ready; the checkpoint must be aborted');
    // Anything still connected that answered ready after all would hold a socket; it leaves on its own.
    return { status, reasons, sessions: prepared, durationMs };
  }

  /** Ends the pod's checkpoint: the socket accepts again, reconnecting processes learn `outcome`. */
  async finish(uid: string, checkpointId: string, outcome: FinishOutcome): Promise<void> {
    const state = this.pods.get(uid);
    if (state === undefined) return;
    if (state.checkpoint !== null && state.checkpoint.id === checkpointId) {
      clearTimeout(state.checkpoint.finishTimer);
      state.checkpoint = null;
    }
    state.outcomes.set(checkpointId, outcome);
    while (state.outcomes.size > OUTCOMES_KEPT) state.outcomes.delete(state.outcomes.keys().next().value!);
    if (state.checkpoint === null && !this.closed && this.pods.get(uid) === state) await state.listener.open();
    this.options.logger.info({ pod: describePod(state.pod), podUid: uid, checkpoint: checkpointId, outcome }, 'checkpoint finished; hook socket accepting again');
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const uid of [...this.pods.keys()]) {
      const state = this.pods.get(uid)!;
      this.pods.delete(uid);
      if (state.checkpoint !== null) clearTimeout(state.checkpoint.finishTimer);
      await state.opening.catch(() => {});
      for (const session of state.sessions) session.close(protocol.CloseCode.goingAway, 'agent shutting down');
      await state.listener.pause();
    }
    this.wss.close();
    this.http.close();
  }

  private onConnection(socket: net.Socket, state: PodState): void {
    if (this.closed || this.pods.get(state.pod.uid) !== state) {
      socket.destroy();
      return;
    }
    socket.on('error', () => {});
    // The pod is fixed by the socket the connection came through; the upgrade handler reads it here.
    this.podBySocket.set(socket, state);
    state.upgrading.add(socket);
    socket.once('close', () => this.settleUpgrade(state, socket));
    this.http.emit('connection', socket);
  }

  private settleUpgrade(state: PodState, socket: net.Socket): void {
    if (!state.upgrading.delete(socket)) return;
    if (state.upgrading.size === 0) for (const resolve of this.upgradeWaiters.get(state)?.splice(0) ?? []) resolve();
  }

  private upgradesSettled(state: PodState): Promise<void> {
    if (state.upgrading.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.upgradeWaiters.get(state) ?? [];
      waiters.push(resolve);
      this.upgradeWaiters.set(state, waiters);
    });
  }

  private attach(ws: WebSocket, state: PodState): void {
    const session = new HookSession(ws, state.pod, {
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      answerHello: (_session, hello) => this.answerHello(hello, state),
    });
    state.sessions.add(session);
    this.options.metrics?.sessions.inc();
    session.on('established', (answer) => {
      const summary = summarize(session);
      this.options.metrics?.connections.labels(answer.type).inc();
      this.options.logger.info(
        { pod: describePod(state.pod), podUid: state.pod.uid, session: summary.sessionId, container: summary.container, pid: summary.pid, answer: answer.type },
        'hook session established',
      );
      this.emit('session', state.pod, summary, answer);
    });
    session.on('protocolError', (code, message) => {
      this.options.metrics?.protocolErrors.labels(code).inc();
      this.options.logger.warn({ pod: describePod(state.pod), podUid: state.pod.uid, session: session.sessionId, code, message }, 'hook protocol error');
    });
    session.on('closed', () => {
      state.sessions.delete(session);
      this.options.metrics?.sessions.dec();
    });
  }

  private answerHello(hello: ValidHello, state: PodState): protocol.HandshakeAnswer | protocol.ProtocolError {
    if (!this.options.protocols.includes(hello.protocol)) {
      return {
        type: 'error',
        code: 'unsupported-version',
        message: `this agent speaks hook protocol ${this.options.protocols.join(', ')}; the client sent ${hello.protocol}. Upgrade the client or the agent.`,
        supportedProtocols: [...this.options.protocols],
      };
    }
    const pod = state.pod;
    const base: protocol.SessionInfo = {
      protocol: hello.protocol,
      sessionId: hello.sessionId,
      podUid: pod.uid,
      podName: pod.name,
      namespace: pod.namespace,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
    };
    const seenIn = this.sessionPods.get(hello.sessionId);
    this.rememberSession(hello.sessionId, pod.uid);
    const previousPodUid = hello.podUid !== '' ? hello.podUid : (seenIn ?? '');
    if (previousPodUid !== '' && previousPodUid !== pod.uid) {
      return { ...base, type: 'restored', checkpointId: hello.pendingCheckpoint, restoreCount: hello.restoreCount + 1, previousPodUid };
    }
    if (hello.pendingCheckpoint !== null) {
      return { ...base, type: 'resumed', checkpointId: hello.pendingCheckpoint, outcome: state.outcomes.get(hello.pendingCheckpoint) ?? 'unknown' };
    }
    return { ...base, type: 'welcome' };
  }

  private rememberSession(sessionId: string, podUid: string): void {
    this.sessionPods.delete(sessionId);
    this.sessionPods.set(sessionId, podUid);
    if (this.sessionPods.size > SESSION_PODS_KEPT) this.sessionPods.delete(this.sessionPods.keys().next().value!);
  }
}

function summarize(session: HookSession): SessionSummary {
  const hello = session.hello;
  return {
    sessionId: hello?.sessionId ?? '',
    container: hello?.container ?? '',
    pid: hello?.pid ?? 0,
    kind: session.answer?.type ?? 'welcome',
    connectedAt: new Date(session.connectedAt),
    client: hello?.client === null || hello === null ? '' : `${hello.client.name} ${hello.client.version}`,
  };
}

function onceEstablished(session: HookSession): Promise<void> {
  return new Promise((resolve) => session.once('established', () => resolve()));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
