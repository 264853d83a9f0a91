import { describe, expect, it } from 'vitest';
import { loadKubeConfig } from './kube-config.ts';

describe('loadKubeConfig', () => {
  it('says which kubeconfig it could not load and what to do', () => {
    expect(() => loadKubeConfig('/nonexistent/kubeconfig')).toThrow(
      /cannot load the kubeconfig \/nonexistent\/kubeconfig \(from --kubeconfig or KUBECONFIG\): .*ENOENT.*; fix the path/,
    );
  });
});
