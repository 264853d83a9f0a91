import { describe, expect, it } from 'vitest';
import { readNodeAgentConfig } from './config.ts';

describe('readNodeAgentConfig', () => {
  const withNode = (...flags: string[]) => readNodeAgentConfig(['--node-name', 'node-a', ...flags], {});

  it('pushes a layer in one PATCH unless a chunk size is set, from the flag or the env', () => {
    expect(withNode().registryChunkBytes).toBe(0);
    expect(withNode('--registry-chunk-size', '104857600').registryChunkBytes).toBe(104_857_600);
    expect(readNodeAgentConfig(['--node-name', 'n'], { CRYO_REGISTRY_CHUNK_SIZE: '65536' }).registryChunkBytes).toBe(65_536);
  });

  it('refuses a chunk size too small to be a sensible PATCH, or no number, naming the flag', () => {
    expect(() => withNode('--registry-chunk-size', '4096')).toThrow(/--registry-chunk-size.*expected 0 \(the whole layer in one PATCH\) or at least 65536 bytes, got 4096/);
    expect(() => withNode('--registry-chunk-size', 'lots')).toThrow(/--registry-chunk-size/);
  });
});
