/**
 * The registered hooks and how a phase runs them, with CRaC's semantics: pre-checkpoint hooks in
 * reverse registration order, post-restore hooks in registration order, every hook runs even if
 * another failed, and the errors come back together. A priority orders first (OpenJ9 style:
 * higher runs later before a checkpoint and earlier after restore). Each hook has its own timeout.
 */

/**
 * What post-restore hooks learn:
 * - `resumed`: the checkpoint was taken and this is the original, carrying on.
 * - `restored`: this process is a copy started from the checkpoint (perhaps the hundredth).
 * - `aborted`: no checkpoint was taken; the original carries on.
 * - `superseded`: the checkpoint was taken for a migration and a copy carries on from it
 *   elsewhere. This process must stay quiet until it is stopped (SIGTERM): keep listeners closed,
 *   take no new requests or jobs, finish nothing with side effects (no writes, no messages sent),
 *   since the copy redoes whatever came after the checkpoint. An outcome this SDK does not know
 *   is reported as `superseded` too: staying quiet is the safe mistake.
 */
export type RestoreOutcome = 'resumed' | 'restored' | 'aborted' | 'superseded';

export interface HookContext {
  /** `<namespace>/<Checkpoint name>`, or null when the agent could not say (a copy of an unannounced checkpoint). */
  checkpointId: string | null;
  reason: string;
  /** When the whole preparation must be over; null after a restore whose checkpoint was unannounced. */
  deadline: Date | null;
  /** How many restores lie behind this process (0 for an original). */
  restoreCount: number;
  /** Set for post-restore hooks only. */
  outcome: RestoreOutcome | null;
}

export type HookFunction = (context: HookContext) => unknown;

export interface HookDefinition {
  /** Shown in logs and in the errors reported to the agent. */
  name?: string;
  /** Higher runs later before a checkpoint and earlier after restore. Default 0. */
  priority?: number;
  /** Per hook, for each phase. Default 10 s; never past the agent's deadline. */
  timeoutMs?: number;
  beforeCheckpoint?: HookFunction;
  afterRestore?: HookFunction;
}

export interface HookFailure {
  hook: string;
  phase: 'beforeCheckpoint' | 'afterRestore';
  error: unknown;
  timedOut: boolean;
}

export interface PhaseResult {
  failures: HookFailure[];
  durationMs: number;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 10_000;

interface Entry {
  definition: HookDefinition;
  sequence: number;
}

export class HookTimeoutError extends Error {
  constructor(hook: string, timeoutMs: number) {
    super(`hook "${hook}" timed out after ${timeoutMs} ms`);
    this.name = 'HookTimeoutError';
  }
}

export class HookRegistry {
  private readonly entries: Entry[] = [];
  private sequence = 0;
  private running = false;
  // Changes made while a phase runs wait for its end, so a phase always sees one fixed set.
  private readonly deferred: Array<() => void> = [];

  /** Adds a hook; the returned function removes it again. */
  register(definition: HookDefinition): () => void {
    if (definition.beforeCheckpoint === undefined && definition.afterRestore === undefined) {
      throw new TypeError('a hook needs beforeCheckpoint, afterRestore or both');
    }
    for (const key of ['beforeCheckpoint', 'afterRestore'] as const) {
      const fn = definition[key];
      if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`${key} must be a function`);
    }
    if (definition.timeoutMs !== undefined && !(Number.isFinite(definition.timeoutMs) && definition.timeoutMs > 0)) {
      throw new TypeError(`timeoutMs must be a positive number of milliseconds, got ${String(definition.timeoutMs)}`);
    }
    if (definition.priority !== undefined && !Number.isFinite(definition.priority)) {
      throw new TypeError(`priority must be a finite number, got ${String(definition.priority)}`);
    }
    const entry: Entry = { definition, sequence: this.sequence++ };
    this.whenIdle(() => this.entries.push(entry));
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.whenIdle(() => {
        const index = this.entries.indexOf(entry);
        if (index >= 0) this.entries.splice(index, 1);
      });
    };
  }

  get size(): number {
    return this.entries.length;
  }

  /** Runs one phase over every hook that has it; never throws. */
  async run(phase: 'beforeCheckpoint' | 'afterRestore', context: HookContext): Promise<PhaseResult> {
    this.running = true;
    const started = performance.now();
    const failures: HookFailure[] = [];
    try {
      for (const entry of this.ordered(phase)) {
        const fn = entry.definition[phase];
        if (fn === undefined) continue;
        const name = entry.definition.name ?? '';
        const timeoutMs = this.timeoutFor(entry.definition, context);
        try {
          await callWithTimeout(() => fn(Object.freeze({ ...context })), timeoutMs, name || '(unnamed)');
        } catch (error) {
          failures.push({ hook: name, phase, error, timedOut: error instanceof HookTimeoutError });
        }
      }
    } finally {
      this.running = false;
      for (const change of this.deferred.splice(0)) change();
    }
    return { failures, durationMs: performance.now() - started };
  }

  private ordered(phase: 'beforeCheckpoint' | 'afterRestore'): Entry[] {
    const before = phase === 'beforeCheckpoint';
    return [...this.entries].sort((a, b) => {
      const pa = a.definition.priority ?? 0;
      const pb = b.definition.priority ?? 0;
      if (pa !== pb) return before ? pa - pb : pb - pa;
      return before ? b.sequence - a.sequence : a.sequence - b.sequence;
    });
  }

  private timeoutFor(definition: HookDefinition, context: HookContext): number {
    const own = definition.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS;
    if (context.outcome !== null || context.deadline === null) return own;
    // Before a checkpoint, no hook may run past the agent's deadline.
    return Math.max(1, Math.min(own, context.deadline.getTime() - Date.now()));
  }

  private whenIdle(change: () => void): void {
    if (this.running) this.deferred.push(change);
    else change();
  }
}

async function callWithTimeout(fn: () => unknown, timeoutMs: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookTimeoutError(name, Math.round(timeoutMs))), timeoutMs);
  });
  try {
    // A hook may be sync or async and may throw synchronously; all three land here the same way.
    await Promise.race([Promise.resolve().then(fn), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The one-line text reported to the agent for a failed hook. */
export function describeFailure(failure: HookFailure): string {
  const error = failure.error;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
