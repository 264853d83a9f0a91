/**
 * The app's end of the hook protocol: one connection to the node agent's per-pod socket, kept up
 * with backoff, that runs the registered hooks when the agent asks and tells the agent how they
 * went. Nothing here throws into the app, or keeps the event loop alive except between `ready`
 * and the outcome and after a `superseded` one: without an agent it logs once and waits quietly.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import WebSocket from 'ws';
import {
  CHECKPOINT_CLOSE_REASON,
  CloseCode,
  CONTAINER_NAME_ENV,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_SOCKET_PATH,
  Feature,
  HELLO_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  parseMessage,
  stringField,
  POD_UID_ENV,
  PROTOCOL_PATH,
  PROTOCOL_VERSION,
  SOCKET_ENV,
} from './protocol.ts';
import type { Failed, HandshakeAnswer, Hello, Prepare, ProtocolError, Ready, Resumed } from './protocol.ts';
import { describeFailure, HookRegistry } from './hook-registry.ts';
import type { HookContext, HookDefinition, RestoreOutcome } from './hook-registry.ts';
import { stderrLogger } from './hook-logger.ts';
import type { HookLogger } from './hook-logger.ts';
import { SDK_NAME, SDK_VERSION } from './version.ts';

export interface CheckpointHooksOptions {
  /** Default: $CRYO_HOOK_SOCKET, else /run/cryo/agent.sock. */
  socketPath?: string;
  /** Default: $CRYO_POD_UID. */
  podUid?: string;
  /** Default: $CRYO_CONTAINER_NAME. */
  container?: string;
  /** Default: 128 random bits. Picked once; a restored copy keeps it because memory is restored. */
  sessionId?: string;
  logger?: HookLogger;
  /** Run the post-restore hooks anyway if the agent has not told the outcome this long after `ready`. Default 120 s. */
  outcomeTimeoutMs?: number;
  /**
   * The pod's hostname as that fallback reads it, before `ready` and when it gives up: the
   * outcome is `restored` if it changed. Default /etc/hostname, which the runtime mounts from the
   * pod's sandbox (a restored copy sees its new pod's name there, where the UTS hostname may be
   * the original's); os.hostname() when the file cannot be read or is empty.
   */
  hostnameFile?: string;
  /** Retry interval while a checkpoint's outcome is pending. Default 20–50 ms. */
  pendingRetryMs?: { min: number; max: number };
  /** Backoff otherwise. Default 100 ms doubling to 5 s. */
  retryMs?: { initial: number; max: number };
}

export type ConnectionKind = HandshakeAnswer['type'];

export interface CheckpointHooksEvents {
  connected: [kind: ConnectionKind, message: HandshakeAnswer];
  answered: [message: Ready | Failed];
  disconnected: [code: number, reason: string];
  'protocol-error': [message: ProtocolError];
}

export type CheckpointHooksState = 'idle' | 'connecting' | 'connected' | 'checkpointing' | 'stopped';

const UNSUPPORTED_VERSION_RETRY_MS = 60_000;
/** The protocol features this client implements (hello.features). */
const FEATURES: string[] = [Feature.superseded];
/** Where the runtime puts the pod's hostname: bind-mounted from the pod's sandbox by CRI-O and containerd alike. */
const DEFAULT_HOSTNAME_FILE = '/etc/hostname';

export class CheckpointHooks extends EventEmitter<CheckpointHooksEvents> {
  readonly socketPath: string;
  readonly sessionId: string;
  private readonly registry = new HookRegistry();
  private readonly container: string;
  private readonly logger: HookLogger;
  private readonly outcomeTimeoutMs: number;
  private readonly hostnameFile: string;
  private readonly pendingRetryMs: { min: number; max: number };
  private readonly retryMs: { initial: number; max: number };

  private podUid: string;
  private restoreCount = 0;
  private pendingCheckpoint: string | null = null;
  private pendingContext: HookContext | null = null;
  private hostnameAtPrepare = '';
  private busy = false;
  /** From a prepare until its outcome is known: a second prepare meanwhile is refused. */
  private preparing = false;
  private afterRestoreRun: Promise<void> = Promise.resolve();

  private started = false;
  private stopped = false;
  private socket: WebSocket | null = null;
  private answered = false;
  private retryDelayMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private outcomeTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  private absentLogged = false;
  private nextRetryOverrideMs: number | null = null;
  /** Whether the last outcome was `superseded`. */
  private supersededNow = false;
  /** Holds the event loop from a `superseded` outcome until the next outcome or stop(). */
  private supersededKeepAlive: NodeJS.Timeout | undefined;

  constructor(options: CheckpointHooksOptions = {}) {
    super();
    this.socketPath = options.socketPath ?? process.env[SOCKET_ENV] ?? DEFAULT_SOCKET_PATH;
    this.podUid = options.podUid ?? process.env[POD_UID_ENV] ?? '';
    this.container = options.container ?? process.env[CONTAINER_NAME_ENV] ?? '';
    this.sessionId = options.sessionId ?? randomBytes(16).toString('hex');
    this.logger = options.logger ?? stderrLogger;
    this.outcomeTimeoutMs = options.outcomeTimeoutMs ?? 120_000;
    this.hostnameFile = options.hostnameFile ?? DEFAULT_HOSTNAME_FILE;
    this.pendingRetryMs = options.pendingRetryMs ?? { min: 20, max: 50 };
    this.retryMs = options.retryMs ?? { initial: 100, max: 5_000 };
    this.retryDelayMs = this.retryMs.initial;
  }

  /** Adds a hook (see HookDefinition); the returned function removes it. */
  register(definition: HookDefinition): () => void {
    return this.registry.register(definition);
  }

  get state(): CheckpointHooksState {
    if (this.stopped) return 'stopped';
    if (!this.started) return 'idle';
    if (this.busy) return 'checkpointing';
    return this.answered ? 'connected' : 'connecting';
  }

  /** How many restores lie behind this process. */
  get restores(): number {
    return this.restoreCount;
  }

  /**
   * True from a `superseded` outcome until the outcome of a later checkpoint of this process (if
   * there ever is one): a copy carries on from the checkpoint elsewhere, so this process must
   * stay quiet until it is stopped. For code that the hooks do not reach (a loop taking jobs).
   */
  get superseded(): boolean {
    return this.supersededNow;
  }

  /** Starts connecting to the agent. Safe to call more than once. */
  start(): this {
    if (this.started || this.stopped) return this;
    this.started = true;
    this.connect();
    return this;
  }

  /** Closes the connection for good. Hooks registered stay registered but will not run. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    clearTimeout(this.outcomeTimer);
    clearInterval(this.supersededKeepAlive);
    this.supersededKeepAlive = undefined;
    const socket = this.socket;
    if (socket === null || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close(CloseCode.normal, 'stopped');
      // A peer that never answers the close handshake must not hold stop() up.
      setTimeout(() => socket.terminate(), 1_000).unref();
    });
  }

  private connect(): void {
    if (this.stopped) return;
    this.answered = false;
    const socketPath = this.socketPath;
    // While the agent's socket is gone (no agent yet, or closed for a dump) a stat is all an
    // attempt costs: a hundred processes polling every 20–50 ms must not load the node.
    if (!existsSync(socketPath)) {
      this.onSocketError(Object.assign(new Error(`no socket at ${socketPath}`), { code: 'ENOENT' }));
      this.scheduleReconnect();
      return;
    }
    const socket = new WebSocket(`ws://localhost${PROTOCOL_PATH}`, {
      createConnection: () => {
        const connection = net.connect({ path: socketPath });
        // Idle, the SDK must not keep the app alive. Mid-checkpoint it must: the app's own
        // servers may be closed, and the process has to live to hear the outcome.
        if (this.pendingCheckpoint === null) connection.unref();
        return connection;
      },
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: HELLO_TIMEOUT_MS,
      perMessageDeflate: false,
    });
    this.socket = socket;
    socket.on('open', () => this.onOpen(socket));
    socket.on('message', (data, isBinary) => this.onMessage(socket, data, isBinary));
    socket.on('error', (error: NodeJS.ErrnoException) => this.onSocketError(error));
    socket.on('close', (code, reason) => this.onClose(socket, code, reason.toString()));
  }

  private onOpen(socket: WebSocket): void {
    if (this.absentLogged) this.logger.info({ socketPath: this.socketPath }, 'connected to the Cryo agent');
    this.absentLogged = false;
    const hello: Hello = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      sessionId: this.sessionId,
      pid: process.pid,
      container: this.container,
      podUid: this.podUid,
      restoreCount: this.restoreCount,
      pendingCheckpoint: this.pendingCheckpoint,
      client: { name: SDK_NAME, version: SDK_VERSION },
      features: FEATURES,
    };
    this.send(socket, hello);
    this.armWatchdog(socket, HELLO_TIMEOUT_MS * 2);
  }

  private onSocketError(error: NodeJS.ErrnoException): void {
    // The close event follows and schedules the retry; only say once that there is no agent.
    const absent = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
    if (absent && !this.absentLogged && this.pendingCheckpoint === null) {
      this.absentLogged = true;
      this.logger.info(
        { socketPath: this.socketPath, code: error.code },
        'no Cryo agent socket; checkpoint hooks will run once the agent is reachable',
      );
    } else if (!absent) {
      this.logger.debug({ socketPath: this.socketPath, error: error.message }, 'hook connection error');
    }
  }

  private onClose(socket: WebSocket, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.answered = false;
    clearTimeout(this.watchdog);
    this.emit('disconnected', code, reason);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    let delay: number;
    if (this.nextRetryOverrideMs !== null) {
      delay = this.nextRetryOverrideMs;
      this.nextRetryOverrideMs = null;
    } else if (this.pendingCheckpoint !== null) {
      const { min, max } = this.pendingRetryMs;
      delay = min + Math.random() * (max - min);
    } else {
      delay = this.retryDelayMs * (0.8 + Math.random() * 0.4);
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.retryMs.max);
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    if (this.pendingCheckpoint === null) this.retryTimer.unref();
  }

  private onMessage(socket: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    const parsed = parseMessage(rawToString(data));
    if ('error' in parsed) {
      this.logger.warn({ error: parsed.error }, 'ignoring a malformed message from the agent');
      return;
    }
    this.armWatchdog(socket, this.heartbeatIntervalMs * 3);
    const message = parsed.message;
    switch (message.type) {
      case 'welcome':
      case 'resumed':
      case 'restored':
        this.onHandshake(message as unknown as HandshakeAnswer);
        return;
      case 'prepare':
        void this.onPrepare(socket, message as unknown as Prepare);
        return;
      case 'ping':
        this.send(socket, { type: 'pong', id: stringField(message.id) });
        return;
      case 'error':
        this.onProtocolError(message as unknown as ProtocolError);
        return;
      default:
        // Unknown types are ignored: later protocol versions may add some.
        return;
    }
  }

  private onHandshake(answer: HandshakeAnswer): void {
    this.answered = true;
    this.retryDelayMs = this.retryMs.initial;
    if (typeof answer.heartbeatIntervalMs === 'number' && answer.heartbeatIntervalMs > 0) {
      this.heartbeatIntervalMs = answer.heartbeatIntervalMs;
    }
    if (typeof answer.podUid === 'string' && answer.podUid !== '') this.podUid = answer.podUid;
    this.emit('connected', answer.type, answer);
    if (answer.type === 'welcome') {
      // Nothing to report; the agent may have lost an outcome we were waiting for.
      if (this.pendingCheckpoint !== null) this.settleOutcome('resumed');
      return;
    }
    if (answer.type === 'restored') {
      this.restoreCount = typeof answer.restoreCount === 'number' ? answer.restoreCount : this.restoreCount + 1;
      this.settleOutcome('restored', answer.checkpointId);
      return;
    }
    this.settleOutcome(this.outcomeOf(answer));
  }

  /** §3: what post-restore hooks are told after `resumed`. A value this client does not know means stay quiet. */
  private outcomeOf(answer: Resumed): RestoreOutcome {
    const outcome: unknown = answer.outcome;
    switch (outcome) {
      case 'done':
      case 'unknown':
        return 'resumed';
      case 'aborted':
        return 'aborted';
      case 'superseded':
        return 'superseded';
      default:
        this.logger.warn(
          { checkpointId: answer.checkpointId, outcome },
          'the agent sent a checkpoint outcome this SDK does not know; taking it as superseded (staying quiet) rather than resuming',
        );
        return 'superseded';
    }
  }

  private async onPrepare(socket: WebSocket, prepare: Prepare): Promise<void> {
    const checkpointId = stringField(prepare.checkpointId);
    const id = stringField(prepare.id);
    if (this.preparing) {
      this.send(socket, failedMessage(id, checkpointId, 0, [{ hook: '', message: 'another checkpoint is in progress', timedOut: false }]));
      return;
    }
    this.preparing = true;
    // Checkpointed again right after a restore: the previous post-restore hooks finish first.
    await this.afterRestoreRun;
    this.busy = true;
    this.hostnameAtPrepare = podHostname(this.hostnameFile);
    const timeoutMs = typeof prepare.timeoutMs === 'number' && prepare.timeoutMs > 0 ? prepare.timeoutMs : 10_000;
    const context: HookContext = {
      checkpointId,
      reason: typeof prepare.reason === 'string' ? prepare.reason : '',
      deadline: new Date(Date.now() + timeoutMs),
      restoreCount: this.restoreCount,
      outcome: null,
    };
    const result = await this.registry.run('beforeCheckpoint', context);
    const stillOpen = socket.readyState === WebSocket.OPEN && this.socket === socket;
    if (result.failures.length > 0) {
      const errors = result.failures.map((f) => ({ hook: f.hook, message: describeFailure(f), timedOut: f.timedOut }));
      this.logger.warn({ checkpointId, errors }, 'a pre-checkpoint hook failed; the checkpoint is aborted');
      if (stillOpen) this.send(socket, failedMessage(id, checkpointId, result.durationMs, errors));
      await this.runAfterRestore({ ...context, outcome: 'aborted' });
      return;
    }
    if (!stillOpen) {
      // The agent went away while the hooks ran; it aborts a checkpoint whose process vanished.
      this.logger.warn({ checkpointId }, 'the agent connection closed during the pre-checkpoint hooks; resuming');
      await this.runAfterRestore({ ...context, outcome: 'aborted' });
      return;
    }
    const ready: Ready = { type: 'ready', id, checkpointId, hookDurationMs: result.durationMs };
    this.pendingCheckpoint = checkpointId;
    this.pendingContext = context;
    this.send(socket, ready);
    this.outcomeTimer = setTimeout(() => this.onOutcomeTimeout(), this.outcomeTimeoutMs);
    // No socket to the agent may exist while CRIU dumps: close it ourselves, reconnect afterwards.
    socket.close(CloseCode.normal, CHECKPOINT_CLOSE_REASON);
  }

  private onOutcomeTimeout(): void {
    if (this.pendingCheckpoint === null) return;
    // A restored copy runs in another pod: /etc/hostname is that pod's (the UTS hostname may
    // still be the original's: containerd and runc restore it with the process).
    const restored = podHostname(this.hostnameFile) !== this.hostnameAtPrepare;
    this.logger.warn(
      { checkpointId: this.pendingCheckpoint, assumed: restored ? 'restored' : 'aborted' },
      'no checkpoint outcome from the agent; running the post-restore hooks anyway',
    );
    if (restored) this.restoreCount += 1;
    this.settleOutcome(restored ? 'restored' : 'aborted');
  }

  private settleOutcome(outcome: RestoreOutcome, checkpointId?: string | null): void {
    clearTimeout(this.outcomeTimer);
    const context = this.pendingContext;
    this.pendingCheckpoint = null;
    this.pendingContext = null;
    void this.runAfterRestore({
      checkpointId: checkpointId !== undefined ? checkpointId : (context?.checkpointId ?? null),
      reason: context?.reason ?? '',
      deadline: context?.deadline ?? null,
      restoreCount: this.restoreCount,
      outcome,
    });
  }

  private runAfterRestore(context: HookContext): Promise<void> {
    this.preparing = false;
    clearInterval(this.supersededKeepAlive);
    this.supersededKeepAlive = undefined;
    this.supersededNow = context.outcome === 'superseded';
    if (this.supersededNow && !this.stopped) {
      // The app's servers stay closed from now on: without this the process could run out of
      // work, exit, and be restarted as a fresh instance beside its copy. SIGTERM still ends it.
      this.supersededKeepAlive = setInterval(() => {}, 1 << 30);
      this.logger.info({ checkpointId: context.checkpointId }, 'superseded: a copy carries on from this checkpoint elsewhere; staying quiet until stopped');
    }
    this.afterRestoreRun = this.runAfterRestoreHooks(context);
    return this.afterRestoreRun;
  }

  private async runAfterRestoreHooks(context: HookContext): Promise<void> {
    this.busy = true;
    try {
      const result = await this.registry.run('afterRestore', context);
      for (const failure of result.failures) {
        this.logger.error(
          { checkpointId: context.checkpointId, hook: failure.hook, outcome: context.outcome, error: describeFailure(failure) },
          'a post-restore hook failed',
        );
      }
    } finally {
      this.busy = false;
    }
  }

  private onProtocolError(message: ProtocolError): void {
    this.emit('protocol-error', message);
    this.logger.error({ code: message.code, message: message.message }, 'the Cryo agent refused this client');
    if (message.code === 'unsupported-version') this.nextRetryOverrideMs = UNSUPPORTED_VERSION_RETRY_MS;
  }

  private armWatchdog(socket: WebSocket, ms: number): void {
    clearTimeout(this.watchdog);
    // Silence for three heartbeat intervals means the agent is gone; reconnecting finds out.
    this.watchdog = setTimeout(() => socket.terminate(), ms);
    this.watchdog.unref();
  }

  private send(socket: WebSocket, message: object): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify(message));
    if ((message as { type: string }).type === 'ready' || (message as { type: string }).type === 'failed') {
      this.emit('answered', message as Ready | Failed);
    }
  }
}

/** The content of the hostname file, trimmed; os.hostname() when it cannot be read or is empty. Never cached. */
function podHostname(file: string): string {
  try {
    const name = readFileSync(file, 'utf8').trim();
    if (name !== '') return name;
  } catch {
    // Not mounted (outside Kubernetes) or not readable: the UTS hostname is the best left.
  }
  return os.hostname();
}

function failedMessage(id: string, checkpointId: string, hookDurationMs: number, errors: Failed['errors']): Failed {
  return { type: 'failed', id, checkpointId, hookDurationMs, errors };
}

function rawToString(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** A CheckpointHooks configured from the environment; call `start()` once the hooks are registered. */
export function createCheckpointHooks(options: CheckpointHooksOptions = {}): CheckpointHooks {
  return new CheckpointHooks(options);
}

let global: CheckpointHooks | undefined;

/** One shared instance per process, for libraries that register hooks without being handed one. */
export function globalCheckpointHooks(): CheckpointHooks {
  return (global ??= new CheckpointHooks());
}
