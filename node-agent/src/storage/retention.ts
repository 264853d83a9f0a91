/**
 * Which stored checkpoints a retention policy removes: the one rule every store applies.
 *
 * Entries are grouped by the policy's scope (one container of a pod, a pod, a namespace) and each
 * group is ordered newest first. A group keeps its newest entries as long as every limit set allows:
 *   - maxCount: at most this many entries;
 *   - maxTotalBytes: their sizes add up to at most this, except that the newest entry is kept even
 *     when it alone is bigger;
 *   - maxAgeSeconds: none created longer ago than this, the newest included.
 * Everything after the first entry a limit refuses is removed. So removal is strictly oldest first:
 * an older entry is never kept in place of a newer one (a small old checkpoint that would still fit
 * the size budget goes before a big newer one that does not). Since each limit keeps a newest-first
 * run, together they keep the shortest of the three runs, and the order in which the limits are
 * applied (count, size, age) cannot change the outcome.
 *
 * Why size never removes a group's newest entry: retention runs right after a store, and the newest
 * entry is the checkpoint just asked for. Removing it because it alone exceeds the budget would
 * turn a successful checkpoint into a missing one; the budget bounds the history kept before it.
 * (The store that holds it has already accepted the bytes.) Age does remove the newest entry: an
 * age limit is an expiry date the operator chose, and a checkpoint past it is as stale as any.
 *
 * "Newest" is createdAt (when the store stored it); of equal times the greater restoreReference
 * counts as newer, so the result never depends on input order.
 */
import type { RetentionPolicy, RetentionScope, StoredEntry } from './checkpoint-store.ts';

/** `scope.mayRemove` narrows what is removed, never what is counted: an entry left to its own node still holds its place. */
export function selectForRemoval(entries: readonly StoredEntry[], policy: RetentionPolicy, now: Date, scope: RetentionScope = {}): StoredEntry[] {
  validateRetentionPolicy(policy);
  const groups = new Map<string, StoredEntry[]>();
  for (const entry of entries) {
    const key = scopeKey(entry, policy.scope);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [entry]);
    else group.push(entry);
  }

  const removed: StoredEntry[] = [];
  for (const group of groups.values()) {
    group.sort(newestFirst);
    const keep = Math.min(keptByCount(group, policy), keptBySize(group, policy), keptByAge(group, policy, now));
    removed.push(...group.slice(keep).filter((entry) => scope.mayRemove?.(entry) ?? true));
  }
  // Oldest first overall: removing in this order, an interrupted run has removed the oldest.
  return removed.sort((a, b) => newestFirst(b, a));
}

/** What retention removes from a store's `entries`: selectForRemoval's choice less what `scope.keep` keeps (in use). */
export async function selectForRemovalKeeping(entries: readonly StoredEntry[], policy: RetentionPolicy, now: Date, scope: RetentionScope = {}): Promise<StoredEntry[]> {
  const candidates = selectForRemoval(entries, policy, now, scope);
  if (candidates.length === 0 || scope.keep === undefined) return candidates;
  const kept = await scope.keep(candidates);
  return candidates.filter((entry) => !kept.has(entry));
}

/** Throws a RangeError naming the first limit that makes no sense. */
export function validateRetentionPolicy(policy: RetentionPolicy): void {
  if (!['container', 'pod', 'namespace'].includes(policy.scope)) {
    throw new RangeError(`retention scope ${JSON.stringify(policy.scope)} is not one of container, pod, namespace`);
  }
  if (policy.maxCount !== undefined && (!Number.isInteger(policy.maxCount) || policy.maxCount < 1)) {
    throw new RangeError(`retention maxCount ${policy.maxCount} must be a whole number of at least 1 (to keep nothing, remove the checkpoints)`);
  }
  if (policy.maxTotalBytes !== undefined && (!Number.isFinite(policy.maxTotalBytes) || policy.maxTotalBytes < 0)) {
    throw new RangeError(`retention maxTotalBytes ${policy.maxTotalBytes} must be a number of bytes, 0 or more`);
  }
  if (policy.maxAgeSeconds !== undefined && (!Number.isFinite(policy.maxAgeSeconds) || policy.maxAgeSeconds <= 0)) {
    throw new RangeError(`retention maxAgeSeconds ${policy.maxAgeSeconds} must be more than 0`);
  }
}

function scopeKey(entry: StoredEntry, scope: RetentionPolicy['scope']): string {
  // JSON keeps names apart that a separator could join ("a/b" + "c" vs "a" + "b/c").
  if (scope === 'namespace') return JSON.stringify([entry.namespace]);
  if (scope === 'pod') return JSON.stringify([entry.namespace, entry.podName]);
  return JSON.stringify([entry.namespace, entry.podName, entry.containerName]);
}

function newestFirst(a: StoredEntry, b: StoredEntry): number {
  const byTime = b.createdAt.getTime() - a.createdAt.getTime();
  if (byTime !== 0) return byTime;
  return a.restoreReference < b.restoreReference ? 1 : a.restoreReference > b.restoreReference ? -1 : 0;
}

function keptByCount(group: StoredEntry[], policy: RetentionPolicy): number {
  return policy.maxCount === undefined ? group.length : Math.min(group.length, policy.maxCount);
}

function keptBySize(group: StoredEntry[], policy: RetentionPolicy): number {
  if (policy.maxTotalBytes === undefined) return group.length;
  let total = 0;
  for (let i = 0; i < group.length; i++) {
    total += group[i].sizeBytes;
    if (total > policy.maxTotalBytes) return Math.max(i, 1);
  }
  return group.length;
}

function keptByAge(group: StoredEntry[], policy: RetentionPolicy, now: Date): number {
  if (policy.maxAgeSeconds === undefined) return group.length;
  const oldestAllowed = now.getTime() - policy.maxAgeSeconds * 1000;
  const firstTooOld = group.findIndex((entry) => entry.createdAt.getTime() < oldestAllowed);
  return firstTooOld === -1 ? group.length : firstTooOld;
}
