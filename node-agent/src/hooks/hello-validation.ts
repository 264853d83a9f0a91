/**
 * Reads a client's `hello` strictly: every field the agent relies on must have its documented
 * type, and a wrong one is named in the error the client gets back.
 */
import { protocol } from '@cryo/hook-sdk';

/** A hello with every field present (defaults filled in) and its type checked. */
export type ValidHello = Omit<protocol.Hello, 'type' | 'client' | 'features'> & {
  client: NonNullable<protocol.Hello['client']> | null;
  /** The names of hello.features the agent keeps (protocol.MAX_FEATURES of at most MAX_FEATURE_LENGTH characters); [] when absent. */
  features: string[];
};

// `client` is only for logs: longer text is cut rather than refused.
const MAX_CLIENT_TEXT_LENGTH = 128;

export function validateHello(message: Record<string, unknown>): { hello: ValidHello } | { error: string } {
  const version = message.protocol;
  if (!Number.isInteger(version)) return { error: 'hello.protocol must be an integer (this agent speaks 1)' };
  const sessionId = message.sessionId;
  if (typeof sessionId !== 'string' || !protocol.SESSION_ID_PATTERN.test(sessionId)) {
    return { error: 'hello.sessionId must be 16–128 characters of [A-Za-z0-9._:-], picked once per process' };
  }
  const pid = message.pid ?? 0;
  if (!Number.isInteger(pid) || (pid as number) < 0) return { error: 'hello.pid must be a non-negative integer' };
  const container = message.container ?? '';
  if (typeof container !== 'string' || container.length > 253) return { error: 'hello.container must be a string (the container name, or "")' };
  const podUid = message.podUid ?? '';
  if (typeof podUid !== 'string' || podUid.length > 64) return { error: 'hello.podUid must be a string (a pod UID, or "")' };
  const restoreCount = message.restoreCount ?? 0;
  if (!Number.isInteger(restoreCount) || (restoreCount as number) < 0) return { error: 'hello.restoreCount must be a non-negative integer' };
  const pending = message.pendingCheckpoint ?? null;
  if (pending !== null && (typeof pending !== 'string' || pending.length > 512)) {
    return { error: 'hello.pendingCheckpoint must be a checkpoint id string or null' };
  }
  const rawClient = message.client;
  const client =
    typeof rawClient === 'object' && rawClient !== null
      ? {
          name: protocol.stringField((rawClient as { name?: unknown }).name).slice(0, MAX_CLIENT_TEXT_LENGTH),
          version: protocol.stringField((rawClient as { version?: unknown }).version).slice(0, MAX_CLIENT_TEXT_LENGTH),
        }
      : null;
  const rawFeatures = message.features ?? [];
  if (!Array.isArray(rawFeatures) || !rawFeatures.every((f) => typeof f === 'string')) {
    return { error: 'hello.features must be an array of strings (the protocol features the client implements, e.g. ["superseded"])' };
  }
  // Names the agent does not know are ignored; a name too long to be one is dropped, not cut.
  const features = rawFeatures.filter((f) => f.length <= protocol.MAX_FEATURE_LENGTH).slice(0, protocol.MAX_FEATURES);
  return {
    hello: {
      protocol: version as number,
      sessionId,
      pid: pid as number,
      container,
      podUid,
      restoreCount: restoreCount as number,
      pendingCheckpoint: pending,
      client,
      features,
    },
  };
}
