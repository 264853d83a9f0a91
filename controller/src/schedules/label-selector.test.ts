import { describe, expect, it } from 'vitest';
import { LabelSelectorError, labelSelectorString } from './label-selector.ts';

describe('labelSelectorString', () => {
  it.each([
    ['an empty selector selects everything', {}, ''],
    ['matchLabels', { matchLabels: { app: 'web', tier: 'front' } }, 'app=web,tier=front'],
    [
      'every operator, values sorted',
      { matchLabels: { app: 'web' }, matchExpressions: [
        { key: 'zone', operator: 'In', values: ['b', 'a'] },
        { key: 'track', operator: 'NotIn', values: ['canary'] },
        { key: 'cryo.dev/migrate', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ] },
      'app=web,zone in (a,b),track notin (canary),cryo.dev/migrate,!legacy',
    ],
  ])('%s', (_, selector, expected) => {
    expect(labelSelectorString(selector)).toBe(expected);
  });

  it.each([
    ['In without values', { key: 'zone', operator: 'In' }, 'selector.matchExpressions[0] (key zone): operator In needs at least one value'],
    ['Exists with values', { key: 'zone', operator: 'Exists', values: ['a'] }, 'selector.matchExpressions[0] (key zone): operator Exists takes no values; remove them'],
    ['an unknown operator', { key: 'zone', operator: 'Equals', values: ['a'] }, 'selector.matchExpressions[0] (key zone): operator "Equals" is not one of In, NotIn, Exists, DoesNotExist'],
  ])('refuses %s, naming the expression', (_, expression, message) => {
    expect(() => labelSelectorString({ matchExpressions: [expression] })).toThrow(LabelSelectorError);
    expect(() => labelSelectorString({ matchExpressions: [expression] })).toThrow(message);
  });
});
