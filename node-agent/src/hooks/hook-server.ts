/**
 * The node agent's hook server: one socket per hook-enabled pod on this node, the sessions of the
 * processes connected to them, and the two calls the rest of the agent makes around a dump:
 * `prepare(pod, …)` (every addressed process runs its pre-checkpoint hooks and disconnects) and
 * `finish(pod, …)` (the socket accepts again; reconnecting processes learn the outcome).
 * docs/hook-protocol.md is the wire contract; docs/architecture.md shows where this sits.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { readdir, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CheckpointPurpose, Logger } from '@cryo/common';
import { protocol } from '@cryo/hook-sdk';
import { describePod, POD_UID_PATTERN, type HookPod } from './hook-pod.ts';
import { makePodDirectory, PodSocketListener } from './pod-socket-listener.ts';
import { isScratchName } from '../host-files/agent-scratch.ts';
import { DEFAULT_MAX_OPERATIONS, drainScratchDir, removeUntrustedTree, type TreeRemoval } from '../host-files/untrusted-tree.ts';
import { HookSession, type SessionAnswer } from './hook-session.ts';
import type { ValidHello } from './hello-validation.ts';
import type { HookMetrics } from './hook-metrics.ts';
import {
  CONNECTION_LOG_BURST,
  CONNECTION_LOG_LINES_PER_SECOND,
  DEFAULT_CONNECTION_LIMITS,
  DEFAULT_MAX_CONNECTIONS_PER_POD,
  TokenBucket,
  WEBSOCKET_RECEIVE_LIMITS,
  type HookConnectionLimits,
  type HookLimit,
} from './hook-limits.ts';

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
  /** Connections one pod may have open at once (--hook-max-connections-per-pod); more are closed at accept. */
  maxConnectionsPerPod?: number;
  /** The fixed limits of every connection (hook-limits.ts); tests shrink them. */
  limits?: Partial<HookConnectionLimits>;
  /** Filesystem calls one removal of a pod's directory may make before leaving the rest for later (untrusted-tree.ts); tests shrink it. */
  removalMaxOperations?: number;
}

export interface PrepareOptions {
  checkpointId: string;
  reason?: string;
  timeoutMs: number;
  /** Only processes of these containers are asked (processes that did not say their container always are). */
  containers?: readonly string[];
  /**
   * What the checkpoint is for (Checkpoint.spec.purpose; default Snapshot). A Migration's
   * checkpoint ends with `finish(…, 'superseded')` once dumped, which only a client listing the
   * `superseded` feature understands: with any addressed process that does not, the prepare fails
   * before a single process is asked, and nothing is dumped.
   */
  purpose?: CheckpointPurpose;
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

/**
 * `done`: dumped, the pod carries on. `aborted`: nothing was dumped (or it failed). `superseded`:
 * dumped for a migration, a copy carries on from it and the pod's processes must stay quiet until
 * the pod is stopped.
 */
export type FinishOutcome = 'done' | 'aborted' | 'superseded';

export interface SessionSummary {
  sessionId: string;
  container: string;
  pid: number;
  kind: protocol.HandshakeAnswer['type'];
  connectedAt: Date;
  client: string;
  /** The protocol features its hello listed (protocol.Feature), as far as the agent keeps them. */
  features: string[];
  /** Bytes queued for the process that it has not read yet. */
  unsentBytes: number;
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
  /** Every open connection of the pod, upgraded or not: what the connection cap counts. */
  connections: Set<net.Socket>;
  /** Connections accepted but not yet upgraded to a session: sockets CRIU would refuse too. */
  upgrading: Set<net.Socket>;
  /** Log lines the pod's connections may still cause now; the ones over it are counted instead. */
  logBudget: TokenBucket;
  suppressedLogLines: number;
  checkpoint: { id: string; finishTimer: NodeJS.Timeout } | null;
  /** Outcomes of recent checkpoints, answered to processes that reconnect with pendingCheckpoint. */
  outcomes: Map<string, FinishOutcome>;
  opening: Promise<void>;
}

const OUTCOMES_KEPT = 32;
const SESSION_PODS_KEPT = 10_000;

/** An accepted connection: the pod is fixed by the socket it came through, its setup time by when. */
interface AcceptedConnection {
  state: PodState;
  acceptedAt: number;
}

export class HookServer extends EventEmitter<HookServerEvents> {
  private readonly options: Required<Omit<HookServerOptions, 'metrics' | 'limits'>> & { metrics: HookMetrics | undefined; limits: HookConnectionLimits };
  private readonly pods = new Map<string, PodState>();
  /** Which pod each session id was last seen in: tells a restored copy on the same node when it sends no podUid. */
  private readonly sessionPods = new Map<string, string>();
  private readonly http = createServer((_req, res) => {
    // connection: close, so a stray HTTP client does not keep a socket to the agent open.
    res.writeHead(404, { 'content-type': 'text/plain', connection: 'close' }).end(`the hook protocol is served at ${protocol.PROTOCOL_PATH}\n`);
  });
  private readonly wss: WebSocketServer;
  private closed = false;
  private readonly accepted = new WeakMap<net.Socket, AcceptedConnection>();
  private readonly upgradeWaiters = new WeakMap<PodState, Array<() => void>>();
  /** Pods whose directory the CSI driver has bind-mounted into the pod (csi/hook-csi-driver.ts): sync() leaves those directories alone. */
  private readonly published = new Set<string>();

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
      maxConnectionsPerPod: options.maxConnectionsPerPod ?? DEFAULT_MAX_CONNECTIONS_PER_POD,
      limits: { ...DEFAULT_CONNECTION_LIMITS, ...options.limits },
      removalMaxOperations: options.removalMaxOperations ?? DEFAULT_MAX_OPERATIONS,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      ...WEBSOCKET_RECEIVE_LIMITS,
      // Ping frames are answered by the session, within its request rate and unsent-bytes bound.
      autoPong: false,
    });
    this.http.on('upgrade', (request: IncomingMessage, socket: net.Socket, head: Buffer) => {
      const accepted = this.accepted.get(socket);
      if (accepted === undefined || request.url?.split('?')[0] !== protocol.PROTOCOL_PATH) {
        socket.end(`HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthe hook protocol is served at ${protocol.PROTOCOL_PATH}\n`);
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => {
        this.attach(ws, accepted);
        this.settleUpgrade(accepted.state, socket);
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
      if (POD_UID_PATTERN.test(entry) && !wanted.has(entry) && !this.published.has(entry)) {
        this.options.logger.info({ podUid: entry }, 'removing the hook directory of a pod that is gone');
        const removal = await removeUntrustedTree(path.join(this.options.hostHooksDir, entry), { scratchParent: this.options.hostHooksDir, maxOperations: this.options.removalMaxOperations });
        this.logRemoval(removal, { podUid: entry });
      }
    }
    await this.drainLeftovers();
  }

  /**
   * Removes what earlier removals left in agent-only scratch directories of the hooks directory
   * (a pod kept writing past the budget, or an agent died mid-way): at every sync and after each
   * pod's removal, so a leftover never outlives the next pod change for long.
   */
  private async drainLeftovers(): Promise<void> {
    const entries = await readdir(this.options.hostHooksDir).catch(() => []);
    for (const entry of entries) {
      if (!isScratchName(entry)) continue;
      const removal = await drainScratchDir(path.join(this.options.hostHooksDir, entry), this.options.removalMaxOperations);
      if (removal.inUse !== true) this.logRemoval(removal, { leftover: entry });
    }
  }

  private logRemoval(removal: TreeRemoval, fields: Record<string, unknown>): void {
    if (removal.removed) return;
    this.options.logger.warn(
      { ...fields, entriesRemoved: removal.entries, leftIn: removal.leftIn, reason: removal.reason },
      removal.leftIn === undefined
        ? 'could not remove a hook directory'
        : 'could not remove all of a hook directory; the rest is kept in an agent-only directory (leftIn) and removed again at the next pod change',
    );
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
        removalMaxOperations: this.options.removalMaxOperations,
        onConnection: (socket) => this.onConnection(socket, state),
      }),
      sessions: new Set(),
      connections: new Set(),
      upgrading: new Set(),
      logBudget: new TokenBucket(CONNECTION_LOG_BURST, CONNECTION_LOG_LINES_PER_SECOND),
      suppressedLogLines: 0,
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
    for (const socket of state.upgrading) socket.destroy();
    const removal = await state.listener.remove();
    this.logRemoval(removal, { pod: describePod(state.pod), podUid: uid });
    this.options.logger.info({ pod: describePod(state.pod), podUid: uid }, 'hook socket removed');
    await this.drainLeftovers();
  }

  /**
   * The pod's directory, made if it is not there yet (the kubelet may publish the CSI volume before
   * the pod watch tells the server of the pod; the socket then appears in it when it does). Kept by
   * sync() until unpublishedDirectory().
   */
  async publishedDirectory(uid: string): Promise<string> {
    if (!POD_UID_PATTERN.test(uid)) throw new Error(`not a pod uid: ${JSON.stringify(uid)}`);
    const dir = path.join(this.options.hostHooksDir, uid);
    this.published.add(uid);
    await makePodDirectory(dir, this.options.dirMode);
    return dir;
  }

  /** The CSI volume is unmounted: a directory of a pod the server does not serve (no longer, or never) goes. */
  async unpublishedDirectory(uid: string): Promise<void> {
    if (!this.published.delete(uid) || this.pods.has(uid) || !POD_UID_PATTERN.test(uid)) return;
    const removal = await removeUntrustedTree(path.join(this.options.hostHooksDir, uid), { scratchParent: this.options.hostHooksDir, maxOperations: this.options.removalMaxOperations });
    this.logRemoval(removal, { podUid: uid });
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
      const hello = session.hello!;
      const who = describeProcess(hello);
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
    // asked too) or goes away; either way it must be settled before the targets are known. Neither
    // takes longer than the setup timeout: a connection not upgraded by then is destroyed, and a
    // session without hello by then is closed.
    const settled = this.upgradesSettled(state);
    const askAll = async (): Promise<void> => {
      await settled;
      const sessions = [...state.sessions].filter((s) => s.isOpen);
      // A connection still in its handshake is a socket CRIU would refuse: wait for its hello or its end.
      await Promise.all(sessions.filter((s) => s.hello === null).map((s) => Promise.race([onceEstablished(s), s.closed()])));
      const asked = sessions.filter((s) => s.isOpen && addressed(s));
      if (options.purpose === 'Migration') {
        // Told `resumed` with an outcome it does not know, such a client would carry on as the
        // original, serving beside its copy: refuse before anyone is asked.
        const unaware = asked.filter((s) => !s.hello!.features.includes(protocol.Feature.superseded));
        if (unaware.length > 0) {
          throw new HookPrepareError(
            unaware
              .map((s) => `${describeProcess(s.hello!)} cannot be told that a migration superseded it: its hook client${s.hello!.client === null ? '' : ` (${s.hello!.client.name} ${s.hello!.client.version})`} lists no "superseded" feature and would take the outcome for resumed; update the app's hook SDK`)
              .join('; '),
          );
        }
      }
      await Promise.all(asked.map(one));
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HookPrepareError(`not every process was ready and disconnected within ${options.timeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      await Promise.race([askAll(), timeout]);
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

  /**
   * Ends the pod's checkpoint: the socket accepts again, and processes reconnecting with it pending
   * learn `outcome` (as long as the agent runs: the last 32 checkpoints' outcomes are kept).
   */
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
      for (const socket of state.upgrading) socket.destroy();
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
    const max = this.options.maxConnectionsPerPod;
    if (state.connections.size >= max) {
      socket.destroy();
      this.limitExceeded(state, 'connections-per-pod', `${state.connections.size} connections open; at most ${max} per pod`);
      return;
    }
    socket.on('error', () => {});
    // The pod is fixed by the socket the connection came through; the upgrade handler reads it here.
    this.accepted.set(socket, { state, acceptedAt: performance.now() });
    state.connections.add(socket);
    state.upgrading.add(socket);
    const setupTimeoutMs = this.options.limits.setupTimeoutMs;
    const upgradeTimer = setTimeout(() => {
      if (!state.upgrading.has(socket)) return;
      this.limitExceeded(state, 'upgrade-time', `no WebSocket upgrade within ${setupTimeoutMs} ms of connecting`);
      socket.destroy();
    }, setupTimeoutMs);
    upgradeTimer.unref();
    socket.once('close', () => {
      clearTimeout(upgradeTimer);
      state.connections.delete(socket);
      this.settleUpgrade(state, socket);
    });
    this.http.emit('connection', socket);
  }

  private limitExceeded(state: PodState, limit: HookLimit, message: string, session = ''): void {
    this.options.metrics?.limitsExceeded.labels(limit).inc();
    this.logForPod(state, 'warn', { limit, session, message }, 'hook connection over a limit; closed');
  }

  /** Logs a line one of the pod's connections caused, within the pod's budget: no pod can flood the agent's log. */
  private logForPod(state: PodState, level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    if (!state.logBudget.take()) {
      state.suppressedLogLines++;
      return;
    }
    const suppressed = state.suppressedLogLines === 0 ? {} : { suppressedLogLines: state.suppressedLogLines };
    state.suppressedLogLines = 0;
    this.options.logger[level]({ pod: describePod(state.pod), podUid: state.pod.uid, ...fields, ...suppressed }, message);
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

  private attach(ws: WebSocket, { state, acceptedAt }: AcceptedConnection): void {
    const session = new HookSession(ws, state.pod, {
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      limits: this.options.limits,
      helloDeadline: acceptedAt + this.options.limits.setupTimeoutMs,
      answerHello: (_session, hello) => this.answerHello(hello, state),
    });
    state.sessions.add(session);
    this.options.metrics?.sessions.inc();
    session.on('established', (answer) => {
      const summary = summarize(session);
      this.options.metrics?.connections.labels(answer.type).inc();
      this.logForPod(state, 'info', { session: summary.sessionId, container: summary.container, pid: summary.pid, answer: answer.type }, 'hook session established');
      this.emit('session', state.pod, summary, answer);
    });
    session.on('protocolError', (code, message) => {
      this.options.metrics?.protocolErrors.labels(code).inc();
      this.logForPod(state, 'warn', { session: session.sessionId, code, message }, 'hook protocol error');
    });
    session.on('limitExceeded', (limit, message) => this.limitExceeded(state, limit, message, session.sessionId));
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
      // `superseded` only ever ends a checkpoint whose every addressed process listed the feature
      // (prepare refuses the others), and a process presents the same hello each time.
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
    features: hello?.features ?? [],
    unsentBytes: session.unsentBytes,
  };
}

function describeProcess(hello: ValidHello): string {
  return `process ${hello.pid} (container "${hello.container}", session ${hello.sessionId})`;
}

function onceEstablished(session: HookSession): Promise<void> {
  return new Promise((resolve) => session.once('established', () => resolve()));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
