/**
 * How every Cryo process finds the Kubernetes API: an explicit kubeconfig file (flag or
 * KUBECONFIG), else the in-cluster service account, else the default kubeconfig.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath !== undefined && kubeconfigPath !== '') {
    try {
      kc.loadFromFile(kubeconfigPath);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`cannot load the kubeconfig ${kubeconfigPath} (from --kubeconfig or KUBECONFIG): ${why}; fix the path, or unset both to use the in-cluster service account`, { cause: err });
    }
  } else if (process.env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else if (defaultKubeconfigFiles().some((file) => existsSync(file))) {
    kc.loadFromDefault();
  }
  // Without any of those, client-node's loadFromDefault makes up http://localhost:8080, and every
  // request then fails with "HTTP protocol is not allowed": say what is missing instead.
  if (kc.getCurrentCluster() === null) {
    throw new Error(
      'no Kubernetes cluster configured: run inside a pod, set KUBECONFIG, or pass --kubeconfig <file>',
    );
  }
  return kc;
}

/** Where kubectl looks without --kubeconfig: the files in KUBECONFIG, else ~/.kube/config. */
function defaultKubeconfigFiles(): string[] {
  const fromEnv = (process.env.KUBECONFIG ?? '').split(path.delimiter).filter((file) => file !== '');
  return fromEnv.length > 0 ? fromEnv : [path.join(homedir(), '.kube', 'config')];
}
