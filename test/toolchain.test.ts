import { describe, expect, it } from 'vitest';
import rootPackage from '../package.json' with { type: 'json' };

describe('the toolchain the repository brings', () => {
  it('runs the tests on its own Node 24, whatever Node the machine has', () => {
    expect(rootPackage.devDependencies.node).toMatch(/^\^?24\./);
    expect(Number(process.versions.node.split('.')[0])).toBe(24);
  });
});
