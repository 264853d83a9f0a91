/**
 * Exit codes and the errors that carry them. Every message says what to do about it: the next
 * command to run, the flag to change, or the document to read.
 */
import { ApiException } from '@kubernetes/client-node';
import { apiStatusCode } from '@cryo/common';

/** The exit codes `kubectl cryo --help` documents. */
export const EXIT = {
  OK: 0,
  /** The operation ran and failed: a Checkpoint or Migration Failed, a pod that never became Ready, an API refusal. */
  FAILED: 1,
  /** The command line is wrong: unknown flag, missing argument, a bad value. */
  USAGE: 2,
  /** Not found, or not allowed (401/403). */
  NOT_FOUND: 3,
  /** --timeout passed while waiting; what was created carries on. */
  TIMEOUT: 4,
  /** Ctrl-C (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;

  constructor(exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

export const usageError = (message: string): CliError => new CliError(EXIT.USAGE, message);

/** What the abort of a command's signal means. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor() {
    super('interrupted');
  }
}

export class TimedOut extends Error {
  override name = 'TimedOut';
  readonly seconds: number;
  constructor(seconds: number) {
    super(`timed out after ${seconds} s`);
    this.seconds = seconds;
  }
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; group?: string };
}

/** The Status the apiserver answered with, when the error carries one. */
export function apiStatus(err: unknown): StatusBody | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const body: unknown = err.body;
  if (typeof body === 'object' && body !== null) return body;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null ? (parsed) : { message: body.slice(0, 300) };
  } catch {
    return body === '' ? undefined : { message: body.slice(0, 300) };
  }
}

/** The apiserver's own words for an error, or the error's message. */
export function apiMessage(err: unknown): string {
  const status = apiStatus(err);
  if (status?.message) return status.message;
  const code = apiStatusCode(err);
  if (err instanceof ApiException) return `HTTP ${code}`;
  return err instanceof Error ? err.message : String(err);
}

export interface ApiErrorContext {
  /** What was asked for, e.g. `Checkpoint "web-1" in namespace shop`. */
  what?: string;
  /** How to see what exists, e.g. `kubectl cryo get checkpoints -n shop`. */
  listHint?: string;
  /** The API server's URL, for connection errors. */
  server?: string;
}

/**
 * An API call's failure as a CliError with the documented exit code: 404/401/403 → 3, anything
 * else → 1. A 404 without details is a path the apiserver does not serve: the CRD is missing.
 */
export function fromApiError(err: unknown, context: ApiErrorContext = {}): CliError {
  if (err instanceof CliError) return err;
  const code = apiStatusCode(err);
  const message = apiMessage(err);
  if (code === 404) {
    const status = apiStatus(err);
    if (status?.details?.name === undefined && /could not find the requested resource/.test(message)) {
      return new CliError(
        EXIT.NOT_FOUND,
        `the API server does not serve this resource (${message}): is Cryo installed on this cluster? Install it with kubectl apply -k manifests/ (the CRDs checkpoints.cryo.dev and migrations.cryo.dev), or pick the right cluster with --context`,
      );
    }
    const what = context.what === undefined ? message : `${context.what} not found (${message})`;
    return new CliError(EXIT.NOT_FOUND, context.listHint === undefined ? what : `${what}; see what exists: ${context.listHint}`);
  }
  if (code === 401) {
    return new CliError(EXIT.NOT_FOUND, `the API server did not accept your credentials (401 Unauthorized): log in again, or pick another --context / --kubeconfig`);
  }
  if (code === 403) {
    return new CliError(EXIT.NOT_FOUND, `forbidden: ${message}; ask your cluster administrator for this permission (Cryo's example Roles: docs/security.md)`);
  }
  if (code === undefined) {
    const cause = (err as { cause?: { code?: string; message?: string } } | undefined)?.cause;
    const network = cause?.code ?? (err as { code?: unknown } | undefined)?.code;
    if (typeof network === 'string' || /fetch failed|ECONNREFUSED|ENOTFOUND|certificate/i.test(message)) {
      const detail = cause?.message ?? message;
      return new CliError(EXIT.FAILED, `cannot reach the API server${context.server === undefined ? '' : ` at ${context.server}`}: ${detail}; check --context and --kubeconfig (kubectl config current-context)`);
    }
  }
  return new CliError(EXIT.FAILED, code === undefined ? message : `the API server refused it (HTTP ${code}): ${message}`);
}
