/**
 * Which store a Checkpoint goes to: its own spec.storage, else the node agent's default. Stores
 * are made once per destination and reused. A Checkpoint cannot send the agent to write anywhere
 * on the node: a directory it names must be the agent's --directory or below it.
 */
import path from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiError, type Checkpoint, type Logger } from '@cryo/common';
import type { CheckpointStore } from '../storage/checkpoint-store.ts';
import { DirectoryStore } from '../storage/directory/directory-store.ts';
import { RegistryStore } from '../storage/registry/registry-store.ts';

export interface StoreDefaults {
  registryRepository: string;
  /** docker config JSON text for the default repository, '' for none. */
  registryDockerConfig: string;
  registryInsecure: boolean;
  registryCaBundle: string;
  /** Bytes per PATCH of a layer upload; 0: the whole layer in one. */
  registryChunkBytes?: number;
  directory: string;
  /** Where the agent runs: push secrets named by Checkpoints are read from here. */
  namespace: string;
}

export class StoreResolver {
  private readonly defaults: StoreDefaults;
  private readonly logger: Logger;
  private readonly core: CoreV1Api | undefined;
  private readonly stores = new Map<string, CheckpointStore>();

  constructor(defaults: StoreDefaults, logger: Logger, kubeConfig?: KubeConfig) {
    this.defaults = defaults;
    this.logger = logger;
    this.core = kubeConfig?.makeApiClient(CoreV1Api);
  }

  /** The default store, for retention and listing. */
  async defaultStore(): Promise<CheckpointStore | { error: string }> {
    return this.resolve(undefined);
  }

  async storeFor(checkpoint: Checkpoint): Promise<CheckpointStore | { error: string }> {
    return this.resolve(checkpoint.spec.storage);
  }

  private async resolve(storage: Checkpoint['spec']['storage']): Promise<CheckpointStore | { error: string }> {
    if (storage?.registry !== undefined) {
      let dockerConfig = this.defaults.registryDockerConfig;
      if (storage.registry.pushSecretName !== undefined) {
        const secret = await this.readPushSecret(storage.registry.pushSecretName);
        if ('error' in secret) return secret;
        dockerConfig = secret.dockerConfig;
      }
      return this.registry(storage.registry.repository, dockerConfig);
    }
    if (storage?.directory !== undefined) {
      const root = this.defaults.directory;
      const wanted = path.resolve(storage.directory.path);
      if (root === '' || (wanted !== path.resolve(root) && !wanted.startsWith(path.resolve(root) + path.sep))) {
        return {
          error: `directory ${storage.directory.path} is not one this node agent stores to (its --directory is ${root === '' ? 'not set' : root}); name that directory or one below it, or use a registry`,
        };
      }
      return this.directory(wanted);
    }
    if (this.defaults.registryRepository !== '') return this.registry(this.defaults.registryRepository, this.defaults.registryDockerConfig);
    if (this.defaults.directory !== '') return this.directory(path.resolve(this.defaults.directory));
    return { error: 'no storage: the Checkpoint names none and the node agent has no default (--registry-repository or --directory)' };
  }

  private registry(repository: string, dockerConfig: string): CheckpointStore | { error: string } {
    const key = `registry ${repository} ${dockerConfig}`;
    const existing = this.stores.get(key);
    if (existing !== undefined) return existing;
    try {
      const store = new RegistryStore({
        repository,
        ...(dockerConfig !== '' ? { dockerConfigJson: dockerConfig } : {}),
        insecure: this.defaults.registryInsecure,
        ...(this.defaults.registryCaBundle !== '' ? { caBundle: this.defaults.registryCaBundle } : {}),
        ...(this.defaults.registryChunkBytes ? { chunkSizeBytes: this.defaults.registryChunkBytes } : {}),
        logger: this.logger.child({ store: repository }),
      });
      this.stores.set(key, store);
      return store;
    } catch (error) {
      return { error: `cannot use registry repository "${repository}": ${(error as Error).message}` };
    }
  }

  private directory(root: string): CheckpointStore {
    const key = `directory ${root}`;
    let store = this.stores.get(key);
    if (store === undefined) {
      store = new DirectoryStore({ root, logger: this.logger.child({ store: root }) });
      this.stores.set(key, store);
    }
    return store;
  }

  private async readPushSecret(name: string): Promise<{ dockerConfig: string } | { error: string }> {
    const where = `${this.defaults.namespace}/${name}`;
    if (this.core === undefined) return { error: `push secret ${where} cannot be read: no API access` };
    try {
      const secret = await this.core.readNamespacedSecret({ namespace: this.defaults.namespace, name });
      const data = secret.data?.['.dockerconfigjson'];
      if (data === undefined) return { error: `push secret ${where} has no .dockerconfigjson; create it with kubectl create secret docker-registry` };
      return { dockerConfig: Buffer.from(data, 'base64').toString('utf8') };
    } catch (error) {
      return { error: `push secret ${where} cannot be read: ${describeApiError(error)}` };
    }
  }
}
