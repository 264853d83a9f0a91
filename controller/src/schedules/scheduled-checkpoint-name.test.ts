import { describe, expect, it } from 'vitest';
import { scheduledCheckpointName } from './schedule-reconciler.ts';

const due = new Date('2026-12-04T01:30:00Z');
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('scheduledCheckpointName', () => {
  it('is <schedule>-<pod>-<due time in UTC, to the minute>', () => {
    expect(scheduledCheckpointName('nightly', 'orders-0', due)).toBe('nightly-orders-0-202612040130');
  });

  it('keeps a name at the 253-character limit as it is', () => {
    const pod = 'p'.repeat(253 - 'nightly-'.length - '-202612040130'.length);
    expect(scheduledCheckpointName('nightly', pod, due)).toBe(`nightly-${pod}-202612040130`);
  });

  it('cuts a longer one to 253 characters, with a hash that keeps two long pod names apart', () => {
    const long = (last: string) => `${'a'.repeat(120)}.${'b'.repeat(120)}${last}`;
    const [one, two] = [scheduledCheckpointName('nightly', long('x'), due), scheduledCheckpointName('nightly', long('y'), due)];
    for (const name of [one, two]) {
      expect(name.length).toBeLessThanOrEqual(253);
      expect(name).toMatch(DNS_SUBDOMAIN);
      expect(name).toMatch(/^nightly-a+\.b+-[0-9a-f]{8}-202612040130$/);
    }
    expect(one).not.toBe(two);
  });

  it('cuts before a separator rather than leave the cut part ending in one', () => {
    // The cut falls right after the '.': the name would hold ".-", which no subdomain may.
    const pod = `${'a'.repeat(222)}.${'b'.repeat(40)}`;
    expect(scheduledCheckpointName('nightly', pod, due)).toMatch(DNS_SUBDOMAIN);
  });
});
