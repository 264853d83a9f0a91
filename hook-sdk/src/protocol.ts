/**
 * The hook protocol, version 1, as types and constants (docs/hook-protocol.md is the contract).
 * The node agent imports these too, so both ends read one definition.
 */

export const PROTOCOL_VERSION = 1;
export const SUPPORTED_PROTOCOLS: readonly number[] = [PROTOCOL_VERSION];
/** The HTTP path of the WebSocket upgrade. */
export const PROTOCOL_PATH = '/v1/hooks';
export const MAX_MESSAGE_BYTES = 65_536;
export const HELLO_TIMEOUT_MS = 5_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

export const SOCKET_ENV = 'CRYO_HOOK_SOCKET';
export const POD_UID_ENV = 'CRYO_POD_UID';
export const CONTAINER_NAME_ENV = 'CRYO_CONTAINER_NAME';
export const DEFAULT_SOCKET_PATH = '/run/cryo/agent.sock';

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedVersion: 4001,
  badMessage: 4002,
  helloRequired: 4003,
  heartbeatTimeout: 4004,
} as const;

/** Reason of the close a client performs after `ready`. */
export const CHECKPOINT_CLOSE_REASON = 'checkpoint';

export const SESSION_ID_PATTERN = /^[A-Za-z0-9._:-]{16,128}$/;

/**
 * What a client lists in `hello.features`: parts of version 1 added after it that an older
 * client would misread, so the agent uses them only with clients that list them.
 * `superseded`: the client understands the `resumed` outcome `superseded` (§2.2); the agent
 * refuses to prepare a Migration checkpoint of a process that does not list it.
 */
export const Feature = {
  superseded: 'superseded',
} as const;
export type Feature = (typeof Feature)[keyof typeof Feature];
/** What the agent keeps of `hello.features`: at most this many names of at most this many characters. */
export const MAX_FEATURES = 32;
export const MAX_FEATURE_LENGTH = 64;

export interface Hello {
  type: 'hello';
  protocol: number;
  sessionId: string;
  pid: number;
  container: string;
  podUid: string;
  restoreCount: number;
  pendingCheckpoint: string | null;
  client?: { name: string; version: string };
  /** The features (Feature) this client implements; absent means none. */
  features?: string[];
}

/** Fields every handshake answer carries. */
export interface SessionInfo {
  protocol: number;
  sessionId: string;
  podUid: string;
  podName: string;
  namespace: string;
  heartbeatIntervalMs: number;
}

export interface Welcome extends SessionInfo {
  type: 'welcome';
}

/**
 * `done`: the checkpoint was taken, the original carries on. `aborted`: it was not taken.
 * `unknown`: the agent has no record (treat as done). `superseded`: it was taken for a migration,
 * a copy carries on from it elsewhere, and this process must stay quiet until it is stopped; sent
 * only to clients whose hello lists the `superseded` feature.
 */
export type CheckpointOutcome = 'done' | 'aborted' | 'unknown' | 'superseded';

export interface Resumed extends SessionInfo {
  type: 'resumed';
  checkpointId: string;
  outcome: CheckpointOutcome;
}

export interface Restored extends SessionInfo {
  type: 'restored';
  checkpointId: string | null;
  restoreCount: number;
  previousPodUid: string;
}

export type HandshakeAnswer = Welcome | Resumed | Restored;

export interface Prepare {
  type: 'prepare';
  id: string;
  checkpointId: string;
  reason: string;
  deadline: string;
  timeoutMs: number;
}

export interface HookErrorReport {
  hook: string;
  message: string;
  timedOut: boolean;
}

export interface Ready {
  type: 'ready';
  id: string;
  checkpointId: string;
  hookDurationMs: number;
}

export interface Failed {
  type: 'failed';
  id: string;
  checkpointId: string;
  hookDurationMs: number;
  errors: HookErrorReport[];
}

export interface Ping {
  type: 'ping';
  id: string;
}

export interface Pong {
  type: 'pong';
  id: string;
}

export type ErrorCode = 'unsupported-version' | 'bad-message' | 'hello-required' | 'unknown-request';

export interface ProtocolError {
  type: 'error';
  code: ErrorCode;
  message: string;
  id?: string;
  supportedProtocols?: number[];
}

export type ClientMessage = Hello | Ready | Failed | Ping | Pong | ProtocolError;
export type AgentMessage = HandshakeAnswer | Prepare | Ping | Pong | ProtocolError;

/** A message as read off the wire: an object with a string `type`, or why it is not one. */
export function parseMessage(text: string): { message: Record<string, unknown> & { type: string } } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `not JSON: ${(error as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'a message must be a JSON object' };
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') return { error: 'a message needs a string "type"' };
  return { message: value as Record<string, unknown> & { type: string } };
}

/** A string field of a received message, or `fallback` when it is missing or of another type. */
export function stringField(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}
