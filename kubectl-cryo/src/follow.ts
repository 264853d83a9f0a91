/**
 * Following objects until something holds: one list, then a watch from its resourceVersion
 * (never polling), resumed from the last resourceVersion seen whenever the stream ends (the
 * server's timeoutSeconds, client-node's 30 s inactivity limit, a dropped connection), and
 * re-listed after 410 Expired. Stops when `decide` returns a value, or when the signal aborts.
 */
import { ApiException, Watch, type KubernetesObject } from '@kubernetes/client-node';
import { apiStatusCode } from '@cryo/common';
import { fromApiError } from './errors.ts';
import type { Kube } from './kube.ts';
import type { ObjectList } from './resources.ts';

/** Watch failures in a row (not clean ends) after which following gives up. */
const MAX_FAILURES = 10;

export type FollowEvent = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface FollowOptions<T extends KubernetesObject, R> {
  kube: Kube;
  /** The collection's list/watch path. */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** The same collection as a list (with the same selectors). */
  list: () => Promise<ObjectList<T>>;
  /** Called for every listed object (as ADDED) and every change; a value other than undefined ends the follow with it. */
  decide: (type: FollowEvent, obj: T) => R | undefined;
  /** Called with each whole list (after its items went through decide): what is absent from it is gone. */
  listed?: (items: readonly T[]) => R | undefined;
  signal: AbortSignal;
  /** Seconds the server keeps one watch open (default 25: below client-node's 30 s inactivity limit). */
  watchSeconds?: number;
  /** Delay before resuming after a watch error, ms (default 1000). */
  retryDelayMs?: number;
}

/** Resolves the first decision; rejects with the signal's reason when it aborts first. */
export async function follow<T extends KubernetesObject, R>(options: FollowOptions<T, R>): Promise<R> {
  const { signal } = options;
  let resourceVersion: string | undefined;
  let failures = 0;
  for (;;) {
    signal.throwIfAborted();
    if (resourceVersion === undefined) {
      let list: ObjectList<T>;
      try {
        list = await options.list();
      } catch (err) {
        signal.throwIfAborted();
        throw fromApiError(err, { server: options.kube.server });
      }
      for (const item of list.items) {
        const decision = options.decide('ADDED', item);
        if (decision !== undefined) return decision;
      }
      const decision = options.listed?.(list.items);
      if (decision !== undefined) return decision;
      resourceVersion = list.metadata?.resourceVersion ?? '';
    }
    let decision: { value: R } | undefined;
    let failure: { err: unknown } | undefined;
    let expired = false;
    // An ERROR event other than 410 (a Status in the stream): a failure like a refused request.
    let streamError: unknown;
    const watchStarted = Date.now();
    let ended = await watchOnce(options, resourceVersion, (type, obj, stop) => {
      if (type === 'ERROR') {
        if ((obj as { code?: number }).code === 410) expired = true;
        else streamError = obj;
        stop();
        return;
      }
      const rv = obj.metadata?.resourceVersion;
      if (rv !== undefined) resourceVersion = rv;
      if (type === 'BOOKMARK') return;
      // client-node's Watch swallows what its callback throws: carry it out by hand.
      try {
        const value = options.decide(type as FollowEvent, obj as T);
        if (value !== undefined) decision = { value };
      } catch (err) {
        failure = { err };
      }
      if (decision !== undefined || failure !== undefined) stop();
    });
    if (failure !== undefined) throw failure.err;
    if (decision !== undefined) return decision.value;
    signal.throwIfAborted();
    if (expired || apiStatusCode(ended) === 410) {
      resourceVersion = undefined;
      continue;
    }
    if (streamError !== undefined) {
      ended = new ApiException((streamError as { code?: number }).code ?? 500, 'watch error', JSON.stringify(streamError), {});
    } else if (ended === null || ended === undefined || isTimeout(ended)) {
      // A clean end (timeoutSeconds, the inactivity limit): resume at once, unless it came at once.
      if (Date.now() - watchStarted < 1000) await sleep(1000, signal);
      failures = 0;
      continue;
    }
    const code = apiStatusCode(ended);
    if (code === 401 || code === 403 || code === 404) throw fromApiError(ended, { server: options.kube.server });
    failures += 1;
    if (failures > MAX_FAILURES) throw fromApiError(ended, { server: options.kube.server });
    await sleep(Math.min((options.retryDelayMs ?? 1000) * 2 ** (failures - 1), 10_000), signal);
  }
}

type WatchCallback = (type: string, obj: KubernetesObject, stop: () => void) => void;

/** One watch request: resolves with what ended it (null: the server closed it cleanly). */
function watchOnce<T extends KubernetesObject, R>(options: FollowOptions<T, R>, resourceVersion: string, callback: WatchCallback): Promise<unknown> {
  const { signal } = options;
  return new Promise<unknown>((resolve) => {
    let controller: AbortController | undefined;
    let stopped = false;
    const stop = () => {
      stopped = true;
      controller?.abort();
    };
    const onAbort = () => stop();
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (err: unknown) => {
      signal.removeEventListener('abort', onAbort);
      resolve(err);
    };
    const query: Record<string, string | number | boolean> = { allowWatchBookmarks: true, timeoutSeconds: options.watchSeconds ?? 25 };
    if (resourceVersion !== '') query.resourceVersion = resourceVersion;
    if (options.fieldSelector !== undefined) query.fieldSelector = options.fieldSelector;
    if (options.labelSelector !== undefined) query.labelSelector = options.labelSelector;
    new Watch(options.kube.kc)
      .watch(options.path, query, (type: string, obj: KubernetesObject) => {
        if (!stopped) callback(type, obj, stop);
      }, finish)
      .then((c) => {
        controller = c;
        if (stopped || signal.aborted) c.abort();
      })
      .catch(finish);
  });
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
