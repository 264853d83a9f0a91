/**
 * How every Cryo process finds the Kubernetes API: an explicit kubeconfig file (flag or
 * KUBECONFIG), else the in-cluster service account, else the default kubeconfig. Without any,
 * an OptionError says what to set, before any client is made: the daemons' process wrapper
 * (run-daemon.ts) prints it in one line and exits.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { OptionError } from '../options.ts';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath !== undefined && kubeconfigPath !== '') {
    try {
      kc.loadFromFile(kubeconfigPath);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new OptionError(`cannot load the kubeconfig ${kubeconfigPath} (from --kubeconfig or KUBECONFIG): ${why}; fix the path, or unset both to use the in-cluster service account`, { cause: err });
    }
  } else {
    const inPod = process.env.KUBERNETES_SERVICE_HOST !== undefined;
    if (inPod && existsSync(IN_CLUSTER_TOKEN)) kc.loadFromCluster();
    else if (defaultKubeconfigFiles().some((file) => existsSync(file))) kc.loadFromDefault();
    else if (inPod) {
      throw new OptionError(
        `no Kubernetes cluster configured: this runs in a pod, but without its service-account token (${IN_CLUSTER_TOKEN}); ` +
          'set automountServiceAccountToken: true on the pod or its ServiceAccount, or set KUBECONFIG',
      );
    }
  }
  // Without any of those, client-node's loadFromDefault makes up http://localhost:8080, and every
  // request then fails with "HTTP protocol is not allowed": say what is missing instead.
  if (kc.getCurrentCluster() === null) {
    throw new OptionError('no Kubernetes cluster configured: run inside a pod, set KUBECONFIG, or pass --kubeconfig <file>');
  }
  return kc;
}

/** Where kubectl looks without --kubeconfig: the files in KUBECONFIG, else ~/.kube/config. */
function defaultKubeconfigFiles(): string[] {
  const fromEnv = (process.env.KUBECONFIG ?? '').split(path.delimiter).filter((file) => file !== '');
  return fromEnv.length > 0 ? fromEnv : [path.join(homedir(), '.kube', 'config')];
}
