/**
 * What one pod can make the hook server hold: every hook-enabled pod is untrusted, and the agent
 * serves every pod of its node under one memory limit. docs/hook-protocol.md §1.1 lists the
 * limits a client sees; docs/operations.md the metric that counts them.
 *
 * Only the connection cap is a flag (--hook-max-connections-per-pod): the rest are fixed by the
 * protocol or sized far above anything a client following it does, so no operator would tune them.
 */
import { protocol } from '@cryo/hook-sdk';

/** A limit a connection went past: the `limit` label of cryo_hook_limits_exceeded_total. */
export type HookLimit =
  | 'connections-per-pod'
  | 'upgrade-time'
  | 'message-size'
  | 'message-parts'
  | 'id-length'
  | 'request-rate'
  | 'unsent-bytes';

export interface HookConnectionLimits {
  /** From accept to a valid hello (HTTP upgrade included); a connection still upgrading then is destroyed. */
  setupTimeoutMs: number;
  /** Bytes the agent may have queued for a connection that does not read; past it the connection is cut. */
  maxUnsentBytes: number;
  /** Requests the agent answers (ping, WebSocket ping frames, unknown-request): a burst of this many… */
  requestBurst: number;
  /** …then this many per second. */
  requestsPerSecond: number;
  /** Bytes and messages a connection may send at once before the agent reads it more slowly… */
  receiveBurstBytes: number;
  receiveBurstMessages: number;
  /** …at this many per second: reading pauses, so a fast sender slows only itself. */
  receiveBytesPerSecond: number;
  receiveMessagesPerSecond: number;
  /** How long a close the agent started may wait for the client's close frame before the socket is destroyed. */
  closeGraceMs: number;
}

export const DEFAULT_MAX_CONNECTIONS_PER_POD = 32;

export const DEFAULT_CONNECTION_LIMITS: HookConnectionLimits = {
  // The protocol's hello timeout, counted from accept so that the upgrade cannot extend it.
  setupTimeoutMs: protocol.HELLO_TIMEOUT_MS,
  // Four messages of the largest size. The agent sends a few hundred bytes per heartbeat or
  // prepare, and the kernel's socket buffer (about 200 KiB) fills before anything queues here.
  maxUnsentBytes: 256 * 1024,
  // Clients need not ping at all (the agent's heartbeat suffices): a generous allowance.
  requestBurst: 20,
  requestsPerSecond: 10,
  // A client sends a message or two per heartbeat and prepare, a few hundred bytes each; its
  // largest, a failed report, is 64 KiB. Unbounded, a pod streaming ignored messages made the
  // agent read (and leave as garbage for V8 to collect) as fast as the socket goes, tens of MiB
  // at a time, and parse tens of thousands of tiny messages a second per connection.
  receiveBurstBytes: 256 * 1024,
  receiveBurstMessages: 100,
  receiveBytesPerSecond: 64 * 1024,
  receiveMessagesPerSecond: 50,
  closeGraceMs: 1_000,
};

/** Ids (`ping`, `ready`, `failed`, any message's `id`) are echoed back: they are kept short. */
export const MAX_ID_LENGTH = 128;

/**
 * The WebSocket layer's bounds on what a connection may buffer on its way in: a message of at
 * most protocol.MAX_MESSAGE_BYTES, in at most 64 fragments, arriving in at most 256 unparsed
 * socket reads (both clients send a message as one frame in one write). ws' defaults (16,384
 * fragments and 262,144 reads) would let a client trickling single bytes pin megabytes.
 */
export const WEBSOCKET_RECEIVE_LIMITS = {
  maxPayload: protocol.MAX_MESSAGE_BYTES,
  maxFragments: 64,
  maxBufferedChunks: 256,
} as const;

/** Per pod, log lines caused by connections (handshakes, protocol errors, limits): a burst, then a steady rate. */
export const CONNECTION_LOG_BURST = 60;
export const CONNECTION_LOG_LINES_PER_SECOND = 1;

/** A server frame's header is at most 10 bytes (unmasked, 64-bit length). */
export const MAX_FRAME_HEADER_BYTES = 10;

/** Allows `burst` events (or bytes) at once, then `perSecond` on average. */
export class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();
  private readonly burst: number;
  private readonly perSecond: number;

  constructor(burst: number, perSecond: number) {
    this.burst = burst;
    this.perSecond = perSecond;
    this.tokens = burst;
  }

  /** Takes one token; false when none is left. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes `count` tokens even if that leaves a debt; returns how many ms until it is paid off (0: none). */
  spend(count: number): number {
    this.refill();
    this.tokens -= count;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }
}
