import { describe, expect, it } from 'vitest';
import type { RetentionPolicy, StoredEntry } from './checkpoint-store.ts';
import { selectForRemoval, selectForRemovalKeeping, validateRetentionPolicy } from './retention.ts';

const NOW = new Date('2026-12-01T12:00:00Z');
const MiB = 1024 * 1024;

/** A stored checkpoint named `name`, `ageSeconds` old, in shop/web-0/app unless told otherwise. */
function entry(name: string, ageSeconds: number, o: { size?: number; ns?: string; pod?: string; container?: string } = {}): StoredEntry {
  const namespace = o.ns ?? 'shop';
  const podName = o.pod ?? 'web-0';
  const containerName = o.container ?? 'app';
  return {
    restoreReference: `/store/${namespace}/${podName}/${containerName}/${name}.tar`,
    namespace,
    podName,
    containerName,
    checkpointName: name,
    checkpointUid: `uid-${name}`,
    sizeBytes: o.size ?? MiB,
    createdAt: new Date(NOW.getTime() - ageSeconds * 1000),
  };
}

const container = (p: Omit<RetentionPolicy, 'scope'>): RetentionPolicy => ({ scope: 'container', ...p });

interface Case {
  what: string;
  entries: StoredEntry[];
  policy: RetentionPolicy;
  /** checkpointName of each removed entry, oldest first. */
  removed: string[];
}

const cases: Case[] = [
  // No limit, no removal.
  { what: 'no limits set: keeps everything', entries: [entry('a', 10), entry('b', 99_999_999)], policy: container({}), removed: [] },
  { what: 'nothing stored: nothing to remove', entries: [], policy: container({ maxCount: 1, maxTotalBytes: 0, maxAgeSeconds: 1 }), removed: [] },

  // maxCount
  { what: 'maxCount keeps the newest N', entries: [entry('n1', 10), entry('n4', 40), entry('n2', 20), entry('n3', 30)], policy: container({ maxCount: 2 }), removed: ['n4', 'n3'] },
  { what: 'maxCount above the group size removes nothing', entries: [entry('a', 10), entry('b', 20)], policy: container({ maxCount: 5 }), removed: [] },
  {
    what: 'scope container: each container of a pod has its own count',
    entries: [entry('app-new', 10), entry('app-old', 20), entry('side-new', 15, { container: 'sidecar' }), entry('side-old', 25, { container: 'sidecar' })],
    policy: container({ maxCount: 1 }),
    removed: ['side-old', 'app-old'],
  },
  {
    what: 'scope pod: the containers of a pod share one count',
    entries: [entry('app-new', 10), entry('app-old', 20), entry('side-new', 15, { container: 'sidecar' })],
    policy: { scope: 'pod', maxCount: 2 },
    removed: ['app-old'],
  },
  {
    what: 'scope namespace: all pods of a namespace share one count, other namespaces are apart',
    entries: [entry('w0', 10), entry('w1', 20, { pod: 'web-1' }), entry('w2', 30, { pod: 'web-2' }), entry('other', 40, { ns: 'billing' })],
    policy: { scope: 'namespace', maxCount: 2 },
    removed: ['w2'],
  },
  {
    what: 'the same pod name in two namespaces is two groups',
    entries: [entry('shop-1', 10), entry('shop-2', 20), entry('bill-1', 15, { ns: 'billing' }), entry('bill-2', 25, { ns: 'billing' })],
    policy: { scope: 'pod', maxCount: 1 },
    removed: ['bill-2', 'shop-2'],
  },
  {
    what: 'names that a separator would join stay apart',
    entries: [entry('x1', 10, { pod: 'a', container: 'b-c' }), entry('x2', 20, { pod: 'a-b', container: 'c' })],
    policy: container({ maxCount: 1 }),
    removed: [],
  },

  // maxTotalBytes
  { what: 'maxTotalBytes removes the oldest until the rest fits', entries: [entry('a', 10, { size: 100 }), entry('b', 20, { size: 100 }), entry('c', 30, { size: 100 })], policy: container({ maxTotalBytes: 250 }), removed: ['c'] },
  { what: 'a total exactly at the budget is within it', entries: [entry('a', 10, { size: 100 }), entry('b', 20, { size: 150 })], policy: container({ maxTotalBytes: 250 }), removed: [] },
  {
    what: 'the newest is kept even when it alone is over the budget; everything older goes',
    entries: [entry('huge', 10, { size: 900 }), entry('b', 20, { size: 10 }), entry('c', 30, { size: 10 })],
    policy: container({ maxTotalBytes: 500 }),
    removed: ['c', 'b'],
  },
  {
    what: 'strictly oldest first: a small old entry that would fit goes with the big one that does not',
    entries: [entry('new', 10, { size: 100 }), entry('big', 20, { size: 200 }), entry('small-old', 30, { size: 10 })],
    policy: container({ maxTotalBytes: 250 }),
    removed: ['small-old', 'big'],
  },
  { what: 'maxTotalBytes 0 keeps only the newest', entries: [entry('a', 10), entry('b', 20)], policy: container({ maxTotalBytes: 0 }), removed: ['b'] },

  // maxAgeSeconds
  { what: 'maxAgeSeconds removes what is older', entries: [entry('recent', 600), entry('stale', 7200)], policy: container({ maxAgeSeconds: 3600 }), removed: ['stale'] },
  { what: 'an entry exactly maxAgeSeconds old is kept', entries: [entry('edge', 3600)], policy: container({ maxAgeSeconds: 3600 }), removed: [] },
  { what: 'age removes the newest too when it is expired', entries: [entry('old', 7200), entry('older', 9000)], policy: container({ maxAgeSeconds: 3600 }), removed: ['older', 'old'] },
  { what: 'an entry from the future (a skewed clock on a shared volume) is not expired', entries: [entry('future', -600)], policy: container({ maxAgeSeconds: 60 }), removed: [] },

  // together
  {
    what: 'all limits together keep the shortest newest-first run (here: size)',
    entries: [entry('a', 10, { size: 100 }), entry('b', 20, { size: 100 }), entry('c', 30, { size: 100 }), entry('d', 40, { size: 100 })],
    policy: container({ maxCount: 3, maxTotalBytes: 200, maxAgeSeconds: 3600 }),
    removed: ['d', 'c'],
  },
  {
    what: 'all limits together (here: age)',
    entries: [entry('a', 10), entry('b', 4000), entry('c', 5000)],
    policy: container({ maxCount: 3, maxTotalBytes: 100 * MiB, maxAgeSeconds: 3600 }),
    removed: ['c', 'b'],
  },
  {
    what: 'size protects the newest, age still expires it',
    entries: [entry('huge-and-old', 7200, { size: 900 })],
    policy: container({ maxTotalBytes: 100, maxAgeSeconds: 3600 }),
    removed: ['huge-and-old'],
  },
  {
    what: 'equal creation times: the greater reference counts as newer, whatever the input order',
    entries: [entry('t-b', 10), entry('t-c', 10), entry('t-a', 10)],
    policy: container({ maxCount: 1 }),
    removed: ['t-a', 't-b'],
  },
  {
    what: 'removals come oldest first across groups',
    entries: [entry('p1-new', 10), entry('p1-old', 50), entry('p2-new', 5, { pod: 'web-1' }), entry('p2-old', 30, { pod: 'web-1' })],
    policy: container({ maxCount: 1 }),
    removed: ['p1-old', 'p2-old'],
  },
];

describe('selectForRemoval', () => {
  it.each(cases)('$what', ({ entries, policy, removed }) => {
    expect(selectForRemoval(entries, policy, NOW).map((e) => e.checkpointName)).toEqual(removed);
  });

  it('gives the same answer for any input order, and does not reorder the caller\'s array', () => {
    const entries = [entry('a', 10, { size: 100 }), entry('b', 20, { size: 100 }), entry('c', 30, { size: 100 }), entry('d', 40, { size: 100, pod: 'web-1' })];
    const policy = container({ maxCount: 2, maxTotalBytes: 150 });
    const expected = selectForRemoval(entries, policy, NOW);
    const copy = [...entries];
    for (const order of [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]) {
      expect(selectForRemoval(order.map((i) => entries[i]), policy, NOW)).toEqual(expected);
    }
    expect(entries).toEqual(copy);
  });
});

describe('validateRetentionPolicy', () => {
  it.each([
    [{ scope: 'container', maxCount: 0 }, 'retention maxCount 0 must be a whole number of at least 1'],
    [{ scope: 'container', maxCount: 1.5 }, 'retention maxCount 1.5 must be a whole number'],
    [{ scope: 'container', maxTotalBytes: -1 }, 'retention maxTotalBytes -1 must be a number of bytes, 0 or more'],
    [{ scope: 'container', maxAgeSeconds: 0 }, 'retention maxAgeSeconds 0 must be more than 0'],
    [{ scope: 'node', maxCount: 1 }, 'retention scope "node" is not one of container, pod, namespace'],
  ] as [RetentionPolicy, string][])('refuses %j', (policy, message) => {
    expect(() => validateRetentionPolicy(policy)).toThrow(RangeError);
    expect(() => selectForRemoval([], policy, NOW)).toThrow(message);
  });
});

describe('retention within the agent\'s reach', () => {
  it('removes only what mayRemove allows, and what it may not still counts in its group', () => {
    // Newest first: c (node-b's), b, a. Keep 1: b and a are over; b is node-b's too.
    const entries = [entry('a', 300), entry('b', 200), entry('c', 100)];
    const theirs = new Set(['b', 'c']);
    const removed = selectForRemoval(entries, container({ maxCount: 1 }), NOW, { mayRemove: (e) => !theirs.has(e.checkpointName) });
    expect(removed.map((e) => e.checkpointName)).toEqual(['a']);
  });
});

describe('retention keeping data in use', () => {
  it('asks keep about the candidates only, once, and removes the rest of them; what it keeps still counts', async () => {
    // Newest first: d, c, b, a. Keep 1: c, b and a are over; b is in use; c is node-b's.
    const entries = [entry('a', 400), entry('b', 300), entry('c', 200), entry('d', 100)];
    const asked: string[][] = [];
    const removed = await selectForRemovalKeeping(entries, container({ maxCount: 1 }), NOW, {
      mayRemove: (e) => e.checkpointName !== 'c',
      keep: (candidates) => {
        asked.push(candidates.map((e) => e.checkpointName));
        return Promise.resolve(new Set(candidates.filter((e) => e.checkpointName === 'b')));
      },
    });
    expect(asked).toEqual([['a', 'b']]);
    expect(removed.map((e) => e.checkpointName)).toEqual(['a']);
  });

  it('does not ask when nothing would go', async () => {
    let asked = false;
    const keep = () => {
      asked = true;
      return Promise.resolve(new Set<StoredEntry>());
    };
    expect(await selectForRemovalKeeping([entry('a', 100)], container({ maxCount: 1 }), NOW, { keep })).toEqual([]);
    expect(asked).toBe(false);
  });
});
