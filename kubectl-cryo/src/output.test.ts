import { describe, expect, it } from 'vitest';
import { age, humanDuration, table } from './output.ts';

describe('humanDuration', () => {
  it('reads as kubectl prints ages', () => {
    const cases: [number, string][] = [
      [-5, '<invalid>'],
      [-0.5, '0s'],
      [45, '45s'],
      [119, '119s'],
      [312, '5m12s'],
      [600, '10m'],
      [179 * 60, '179m'],
      [3 * 3600 + 20 * 60, '3h20m'],
      [5 * 3600, '5h'],
      [30 * 3600, '30h'],
      [2 * 86400 + 4 * 3600, '2d4h'],
      [400 * 86400, '400d'],
      [3 * 365 * 86400 + 10 * 86400, '3y10d'],
      [9 * 365 * 86400, '9y'],
    ];
    for (const [seconds, text] of cases) expect([seconds, humanDuration(seconds)]).toEqual([seconds, text]);
  });

  it('ages strings and Dates alike, and unknown ones as <unknown>', () => {
    const now = Date.parse('2026-12-03T12:00:00Z');
    expect(age('2026-12-03T11:55:00Z', now)).toBe('5m');
    expect(age(new Date('2026-12-03T11:59:30Z'), now)).toBe('30s');
    expect(age(undefined, now)).toBe('<unknown>');
    expect(age('yesterday', now)).toBe('<unknown>');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell, three spaces apart', () => {
    expect(table([
      ['NAME', 'PHASE', 'MESSAGE'],
      ['web-warm', 'Succeeded', 'ok'],
      ['a', 'Failed', ''],
    ])).toBe('NAME       PHASE       MESSAGE\nweb-warm   Succeeded   ok\na          Failed\n');
    expect(table([])).toBe('');
  });
});
