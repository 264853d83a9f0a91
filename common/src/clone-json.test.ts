import { describe, expect, it } from 'vitest';
import { cloneJson } from './clone-json.ts';

describe('cloneJson', () => {
  it('copies parsed JSON deeply, sharing nothing', () => {
    const original = JSON.parse('{"a":[1,{"b":null,"c":"x"}],"d":true,"e":{"f":{"g":[]}}}') as {
      a: [number, { b: null; c: string }];
      e: { f: { g: unknown[] } };
    };
    const copy = cloneJson(original);
    expect(copy).toEqual(original);
    copy.a[1].c = 'changed';
    copy.e.f.g.push(1);
    expect(original.a[1].c).toBe('x');
    expect(original.e.f.g).toEqual([]);
  });

  it('returns primitives as they are', () => {
    expect(cloneJson(3)).toBe(3);
    expect(cloneJson(null)).toBe(null);
    expect(cloneJson('s')).toBe('s');
  });
});
