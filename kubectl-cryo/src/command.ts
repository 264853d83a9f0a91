/** What every command is given, and the pieces commands share (deadlines, progress lines). */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { OptionSpecs, Parsed } from './args.ts';
import { CliError, EXIT, TimedOut } from './errors.ts';
import type { Io, Output } from './io.ts';
import type { Kube } from './kube.ts';
import { humanDuration } from './output.ts';

export interface CommandContext {
  parsed: Parsed;
  io: Io;
  /** Connects on first use, so --help and usage errors need no cluster. */
  kube: () => Kube;
  /** Aborts (with Interrupted) on Ctrl-C. */
  signal: AbortSignal;
  /** Delays tests shorten. */
  tuning?: Tuning;
}

export interface Tuning {
  /** Between eviction attempts a disruption budget refused (default 5 s, as kubectl drain). */
  evictionRetryMs?: number;
}

export interface Command {
  name: string;
  aliases?: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** The whole `--help` text but the global flags. */
  help: string;
  options: OptionSpecs;
  run(ctx: CommandContext): Promise<number>;
}

/** `parent`, plus an abort with TimedOut after `seconds` (none for 0). Dispose when done. */
export function deadline(parent: AbortSignal, seconds: number): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = seconds > 0 ? setTimeout(() => controller.abort(new TimedOut(seconds)), seconds * 1000) : undefined;
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

/** Turns a TimedOut into exit 4 with what carries on and how to look at it. */
export function timeoutError(err: unknown, waitingFor: string, carriesOn: string): unknown {
  if (!(err instanceof TimedOut)) return err;
  return new CliError(EXIT.TIMEOUT, `timed out after ${humanDuration(err.seconds)} waiting for ${waitingFor}; ${carriesOn}`);
}

/** Progress lines on a terminal, each with the time since the command started. */
export class Progress {
  private readonly out: Output;
  private readonly start = Date.now();

  constructor(out: Output) {
    this.out = out;
  }

  line(text: string): void {
    const seconds = (Date.now() - this.start) / 1000;
    this.out.write(`${seconds.toFixed(1).padStart(6)}s  ${text}\n`);
  }
}

export const nameOf = (obj: KubernetesObject): string => obj.metadata?.name ?? '';
