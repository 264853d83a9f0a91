import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from './kube-config.ts';

describe('loadKubeConfig', () => {
  it('says which kubeconfig it could not load and what to do', () => {
    expect(() => loadKubeConfig('/nonexistent/kubeconfig')).toThrow(
      /cannot load the kubeconfig \/nonexistent\/kubeconfig \(from --kubeconfig or KUBECONFIG\): .*ENOENT.*; fix the path/,
    );
  });

  describe('with no kubeconfig anywhere and outside a pod', () => {
    const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST };
    const home = mkdtempSync(path.join(tmpdir(), 'cryo-no-kubeconfig-'));
    afterEach(() => {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(home, { recursive: true, force: true });
    });

    it('says no cluster is configured, rather than making up localhost:8080', () => {
      process.env.HOME = home;
      delete process.env.KUBECONFIG;
      delete process.env.KUBERNETES_SERVICE_HOST;
      expect(() => loadKubeConfig()).toThrow('no Kubernetes cluster configured: run inside a pod, set KUBECONFIG, or pass --kubeconfig <file>');
    });

    it.skipIf(existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'))('says what is missing in a pod without its service-account token', () => {
      process.env.HOME = home;
      delete process.env.KUBECONFIG;
      process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
      expect(() => loadKubeConfig()).toThrow(
        'no Kubernetes cluster configured: this runs in a pod, but without its service-account token (/var/run/secrets/kubernetes.io/serviceaccount/token); set automountServiceAccountToken: true',
      );
    });
  });
});
