/**
 * The user's cluster, as kubectl finds it: --kubeconfig (else KUBECONFIG, else ~/.kube/config),
 * --context (else the current one), -n (else the context's namespace, else `default`).
 */
import { CoreV1Api, CustomObjectsApi, EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '@cryo/common';
import { CliError, EXIT, usageError } from './errors.ts';

export interface Kube {
  kc: KubeConfig;
  /** The namespace commands act in. */
  namespace: string;
  /** The API server's URL, for messages. */
  server: string;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  events: EventsV1Api;
}

export interface ConnectOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export function connect(options: ConnectOptions): Kube {
  let kc: KubeConfig;
  try {
    kc = loadKubeConfig(options.kubeconfig);
  } catch (err) {
    throw new CliError(EXIT.USAGE, (err as Error).message);
  }
  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null) {
      const known = kc.getContexts().map((c) => c.name);
      throw usageError(`--context ${options.context}: no such context in the kubeconfig; it has ${known.length === 0 ? 'none' : known.join(', ')} (kubectl config get-contexts)`);
    }
    kc.setCurrentContext(options.context);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw usageError('the kubeconfig names no cluster for the current context: pick one with --context, or kubectl config use-context <name>');
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const namespace = options.namespace ?? (contextNamespace || 'default');
  return {
    kc,
    namespace,
    server: cluster.server,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    events: kc.makeApiClient(EventsV1Api),
  };
}
