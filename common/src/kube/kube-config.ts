/**
 * How every Cryo process finds the Kubernetes API: an explicit kubeconfig file (flag or
 * KUBECONFIG), else the in-cluster service account, else the default kubeconfig.
 */
import { existsSync } from 'node:fs';
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
  } else {
    kc.loadFromDefault();
  }
  if (kc.getCurrentCluster() === null) {
    throw new Error(
      'no Kubernetes cluster configured: run inside a pod, set KUBECONFIG, or pass --kubeconfig <file>',
    );
  }
  return kc;
}
