/**
 * Which store a Checkpoint goes to, in this order: the CheckpointStorageClass it names
 * (spec.storageClassName), its own spec.storage, the default class open to its namespace, else the
 * node agent's default (flags). Stores are made once per destination and reused. A Checkpoint
 * chooses only among what the administrator allowed, and each namespace's checkpoints stay apart:
 * - a storage class is the administrator's: it names its registry or directory and push Secret,
 *   and lists the namespaces that may use it; any other namespace is refused;
 * - a directory (a class's or one a Checkpoint names) must be the agent's --directory or below
 *   it, compared with the symlinks of both resolved (a symlink below --directory pointing
 *   elsewhere does not pass), and the store then uses the resolved path it checked; archives go
 *   under <directory>/<namespace>/;
 * - a registry repository a Checkpoint names must be --registry-repository or one of
 *   --registry-allowed-repositories (or below one), and a push Secret it names must say that the
 *   Checkpoint's namespace may use it (annotation cryo.dev/push-secret-namespaces); otherwise the
 *   agent would push wherever, with whichever credentials, a namespace asks (a confused deputy);
 * - images go to <repository>/cryo-checkpoints/<namespace>, so retention and pull credentials can
 *   be scoped per namespace, and an admission policy (manifests/restore-image-policy.yaml) keeps
 *   pods to their own namespace's images.
 */
import path from 'node:path';
import { isAtOrBelow, resolveThroughSymlinks } from '../host-files/resolved-path.ts';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  annotations,
  apiStatusCode,
  CHECKPOINT_GROUP,
  CHECKPOINT_STORAGE_CLASS_PLURAL,
  CHECKPOINT_VERSION,
  defaultStorageClassFor,
  describeApiError,
  isNotFound,
  storageClassAllows,
  type Checkpoint,
  type CheckpointFailure,
  type CheckpointStorageClass,
  type CheckpointStorageClassList,
  type Logger,
} from '@cryo/common';
import type { CheckpointStore } from '../storage/checkpoint-store.ts';
import { DirectoryStore } from '../storage/directory/directory-store.ts';
import { RegistryStore } from '../storage/registry/registry-store.ts';
import { layerCompressionOf, type LayerCompression } from '../storage/registry/layer-compression.ts';

export interface StoreDefaults {
  registryRepository: string;
  /** Further repositories a Checkpoint may name (--registry-allowed-repositories), each also allowing those below it. */
  registryAllowedRepositories?: readonly string[];
  /** docker config JSON text for the default repository, '' for none. */
  registryDockerConfig: string;
  registryInsecure: boolean;
  registryCaBundle: string;
  /** Bytes per PATCH of a layer upload; 0: the whole layer in one. */
  registryChunkBytes?: number;
  /** How checkpoint images' layers are written unless a storage class says (absent: the store's default). */
  registryLayerCompression?: LayerCompression;
  directory: string;
  /** Every node mounts `directory` (--directory-shared): its checkpoints restore on any node. */
  directoryShared?: boolean;
  /** Where the registry view serving `directory` listens ('' or absent: no view, archive paths). */
  directoryRegistryAddress?: string;
  /** Where the agent runs: push secrets named by Checkpoints are read from here. */
  namespace: string;
}

/** Tries at listing storage classes when the apiserver answers 429 or 5xx: 0.5 + 1 + 2 + 4 s of waiting at most. */
const LIST_ATTEMPTS = 5;

/** The store a Checkpoint goes to, and the storage class it came from, if any, with that class's pull Secret. */
export interface ResolvedStore {
  store: CheckpointStore;
  className?: string;
  pullSecretName?: string;
}

export class StoreResolver {
  private readonly defaults: StoreDefaults;
  private readonly logger: Logger;
  private readonly core: CoreV1Api | undefined;
  private readonly custom: CustomObjectsApi | undefined;
  private readonly stores = new Map<string, CheckpointStore>();

  constructor(defaults: StoreDefaults, logger: Logger, kubeConfig?: KubeConfig) {
    this.defaults = defaults;
    this.logger = logger;
    this.core = kubeConfig?.makeApiClient(CoreV1Api);
    this.custom = kubeConfig?.makeApiClient(CustomObjectsApi);
  }

  async storeFor(checkpoint: Checkpoint): Promise<ResolvedStore | CheckpointFailure> {
    const namespace = checkpoint.metadata?.namespace ?? '';
    const { storageClassName, storage } = checkpoint.spec;
    if (storageClassName !== undefined) {
      const named = await this.readStorageClass(storageClassName);
      if ('error' in named) return named;
      return this.fromStorageClass(named.storageClass, namespace);
    }
    if (storage !== undefined) return withoutClass(await this.fromSpec(storage, namespace));
    const classes = await this.listStorageClasses();
    if ('error' in classes) return classes;
    const fallback = defaultStorageClassFor(classes.items, namespace, annotations.IS_DEFAULT_CLASS);
    if (fallback !== undefined) return this.fromStorageClass(fallback, namespace);
    if (this.defaults.registryRepository !== '') return withoutClass(this.registry(namespaceRepository(this.defaults.registryRepository, namespace), this.defaults.registryDockerConfig, this.defaults.registryLayerCompression));
    if (this.defaults.directory !== '') return withoutClass(this.directory(path.resolve(this.defaults.directory), this.defaults.directoryShared ?? false, path.resolve(this.defaults.directory)));
    return {
      reason: 'StorageNotConfigured',
      error:
        'no storage: the Checkpoint names none, no default CheckpointStorageClass is open to its namespace, and the node agent has no default store. ' +
        'The administrator sets one with the agent flag --directory (env CRYO_DIRECTORY; manifests/ sets /var/lib/cryo/checkpoints) or --registry-repository, or marks a CheckpointStorageClass default',
    };
  }

  /**
   * The agent's own --directory store (the one storeFor gives a Checkpoint that names no storage
   * when no registry is set), when there is one: one store for every namespace, so retention's
   * periodic run looks at it even when none of its Checkpoints remain (orphaned data).
   */
  defaultDirectoryStore(): CheckpointStore | undefined {
    if (this.defaults.directory === '') return undefined;
    const root = path.resolve(this.defaults.directory);
    return this.directory(root, this.defaults.directoryShared ?? false, root);
  }

  /** A class the administrator defined: trusted for its repository and push Secret, but only for the namespaces it lists. */
  private async fromStorageClass(storageClass: CheckpointStorageClass, namespace: string): Promise<ResolvedStore | CheckpointFailure> {
    const className = storageClass.metadata?.name ?? '';
    if (!storageClassAllows(storageClass, namespace)) {
      return { reason: 'StorageRefused', error: `storage class ${className} is not open to namespace ${namespace}: the administrator lists the namespaces that may use it in its spec.namespaces; name another (kubectl get checkpointstorageclasses) or leave storageClassName out for the default` };
    }
    const { registry, directory } = storageClass.spec;
    let resolved: CheckpointStore | CheckpointFailure;
    if (registry !== undefined) {
      let dockerConfig = this.defaults.registryDockerConfig;
      if (registry.pushSecretName !== undefined) {
        const secret = await this.readPushSecret(registry.pushSecretName, namespace, { grantedBy: `storage class ${className}` });
        if ('error' in secret) return secret;
        dockerConfig = secret.dockerConfig;
      }
      let layerCompression = this.defaults.registryLayerCompression;
      if (registry.layerCompression !== undefined) {
        layerCompression = layerCompressionOf(registry.layerCompression);
        // The CRD's enum refuses others; a class written before it, or past it, must not be guessed at.
        if (layerCompression === undefined) return { reason: 'StorageRefused', error: `storage class ${className} has spec.registry.layerCompression "${String(registry.layerCompression)}", which is neither None nor Zstd; the administrator fixes it` };
      }
      resolved = this.registry(namespaceRepository(registry.repository, namespace), dockerConfig, layerCompression);
    } else if (directory !== undefined) {
      resolved = await this.confinedDirectory(directory.path, directory.shared ?? false, `storage class ${className}`);
    } else {
      resolved = { reason: 'StorageRefused', error: `storage class ${className} names neither a registry nor a directory; the administrator fixes it` };
    }
    if ('error' in resolved) return resolved;
    return { store: resolved, className, ...(registry?.pullSecretName !== undefined ? { pullSecretName: registry.pullSecretName } : {}) };
  }

  private async fromSpec(storage: NonNullable<Checkpoint['spec']['storage']>, namespace: string): Promise<CheckpointStore | CheckpointFailure> {
    if (storage.registry !== undefined) {
      const named = storage.registry.repository.replace(/\/+$/, '');
      const allowed = [this.defaults.registryRepository, ...(this.defaults.registryAllowedRepositories ?? [])].filter((r) => r !== '');
      if (!allowed.some((base) => named === base || named.startsWith(`${base}/`))) {
        return {
          reason: 'StorageRefused',
          error:
            `registry repository ${named} is not one this node agent pushes to (${allowed.length === 0 ? 'it has none' : allowed.join(', ')}); ` +
            'name one of those (or a repository below one), or leave spec.storage out for the default. The administrator allows more with --registry-allowed-repositories or a CheckpointStorageClass',
        };
      }
      let dockerConfig = this.defaults.registryDockerConfig;
      if (storage.registry.pushSecretName !== undefined) {
        const secret = await this.readPushSecret(storage.registry.pushSecretName, namespace);
        if ('error' in secret) return secret;
        dockerConfig = secret.dockerConfig;
      }
      return this.registry(namespaceRepository(named, namespace), dockerConfig, this.defaults.registryLayerCompression);
    }
    if (storage.directory !== undefined) {
      // The administrator knows what the directory is; a Checkpoint may only say that its own one is shared.
      return this.confinedDirectory(storage.directory.path, storage.directory.shared ?? this.defaults.directoryShared ?? false);
    }
    return { reason: 'StorageRefused', error: 'spec.storage names neither a registry nor a directory' };
  }

  /** A directory store at `named` if it is --directory or below it, both resolved through their symlinks. */
  private async confinedDirectory(named: string, shared: boolean, whose = ''): Promise<CheckpointStore | CheckpointFailure> {
    const root = this.defaults.directory;
    const refused = (why = ''): CheckpointFailure => ({
      reason: 'StorageRefused',
      error: `directory ${named}${whose === '' ? '' : ` of ${whose}`} is not one this node agent stores to (its --directory is ${root === '' ? 'not set' : root})${why}; name that directory or one below it, or use a registry`,
    });
    if (root === '') return refused();
    // Both resolved through their symlinks (the existing part; the rest is created below it).
    let realRoot: string;
    let wanted: string;
    try {
      realRoot = await resolveThroughSymlinks(root);
      wanted = await resolveThroughSymlinks(named);
    } catch (error) {
      return refused(`: it cannot be resolved (${(error as Error).message})`);
    }
    if (!isAtOrBelow(wanted, realRoot)) {
      const lexically = path.resolve(named);
      return refused(lexically === wanted ? '' : `: it resolves to ${wanted} through a symbolic link`);
    }
    return this.directory(wanted, shared, realRoot);
  }

  private async readStorageClass(name: string): Promise<{ storageClass: CheckpointStorageClass } | CheckpointFailure> {
    if (this.custom === undefined) return { reason: 'StorageUnreadable', error: `storage class ${name} cannot be read: no API access` };
    try {
      const storageClass = (await this.custom.getClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_STORAGE_CLASS_PLURAL, name })) as CheckpointStorageClass;
      return { storageClass };
    } catch (error) {
      if (isNotFound(error)) return { reason: 'StorageRefused', error: `storage class ${name} does not exist; kubectl get checkpointstorageclasses lists those there are` };
      return { reason: 'StorageUnreadable', error: `storage class ${name} cannot be read: ${describeApiError(error)}` };
    }
  }

  /** All classes, to find the default; none without API access or without the CRD (an older install). */
  private async listStorageClasses(): Promise<{ items: CheckpointStorageClass[] } | CheckpointFailure> {
    if (this.custom === undefined) return { items: [] };
    for (let attempt = 1; ; attempt++) {
      try {
        const list = (await this.custom.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_STORAGE_CLASS_PLURAL })) as CheckpointStorageClassList;
        return { items: list.items };
      } catch (error) {
        if (isNotFound(error)) return { items: [] };
        // An apiserver still starting its storage answers 429 or 5xx for a moment (seen right after install).
        const status = apiStatusCode(error) ?? 0;
        if ((status === 429 || status >= 500) && attempt < LIST_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
          continue;
        }
        // Storing elsewhere than the default class the administrator set would be worse than failing.
        return { reason: 'StorageUnreadable', error: `the default storage class cannot be found: listing CheckpointStorageClasses failed: ${describeApiError(error)}` };
      }
    }
  }

  private registry(repository: string, dockerConfig: string, layerCompression: LayerCompression | undefined): CheckpointStore | CheckpointFailure {
    const key = `registry ${repository} ${layerCompression ?? 'default'} ${dockerConfig}`;
    const existing = this.stores.get(key);
    if (existing !== undefined) return existing;
    try {
      const store = new RegistryStore({
        repository,
        ...(dockerConfig !== '' ? { dockerConfigJson: dockerConfig } : {}),
        insecure: this.defaults.registryInsecure,
        ...(this.defaults.registryCaBundle !== '' ? { caBundle: this.defaults.registryCaBundle } : {}),
        ...(this.defaults.registryChunkBytes ? { chunkSizeBytes: this.defaults.registryChunkBytes } : {}),
        ...(layerCompression !== undefined ? { layerCompression } : {}),
        logger: this.logger.child({ store: repository }),
      });
      this.stores.set(key, store);
      return store;
    } catch (error) {
      return { reason: 'StorageRefused', error: `cannot use registry repository "${repository}": ${(error as Error).message}` };
    }
  }

  /** `viewRoot`: --directory written as `root` is (both resolved, or both as configured), for the image names under the registry view. */
  private directory(root: string, shared: boolean, viewRoot: string): CheckpointStore {
    const key = `directory ${root} ${shared}`;
    let store = this.stores.get(key);
    if (store === undefined) {
      const address = this.defaults.directoryRegistryAddress ?? '';
      store = new DirectoryStore({
        root,
        shared,
        ...(address !== '' ? { registryView: { address, root: viewRoot } } : {}),
        logger: this.logger.child({ store: root }),
      });
      this.stores.set(key, store);
    }
    return store;
  }

  /**
   * The push Secret `name` in the agent's namespace. A Checkpoint naming it must be in a namespace
   * its annotation lists; a storage class naming it (`grantedBy`) already says who may use it.
   */
  private async readPushSecret(name: string, namespace: string, options: { grantedBy?: string } = {}): Promise<{ dockerConfig: string } | CheckpointFailure> {
    const where = `${this.defaults.namespace}/${name}`;
    // The same answer whether or not the Secret exists: a namespace learns nothing of others' Secrets.
    const notAvailable: CheckpointFailure = { reason: 'StorageRefused', error: `push secret ${name} is not available to namespace ${namespace}: the administrator lists the namespaces that may use a push secret in its annotation ${annotations.PUSH_SECRET_NAMESPACES}` };
    if (this.core === undefined) return { reason: 'StorageUnreadable', error: `push secret ${where} cannot be read: no API access` };
    try {
      const secret = await this.core.readNamespacedSecret({ namespace: this.defaults.namespace, name });
      if (options.grantedBy === undefined) {
        const users = (secret.metadata?.annotations?.[annotations.PUSH_SECRET_NAMESPACES] ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
        if (!users.includes('*') && !users.includes(namespace)) return notAvailable;
      }
      const data = secret.data?.['.dockerconfigjson'];
      if (data === undefined) return { reason: 'StorageRefused', error: `push secret ${where} has no .dockerconfigjson; create it with kubectl create secret docker-registry` };
      return { dockerConfig: Buffer.from(data, 'base64').toString('utf8') };
    } catch (error) {
      if (isNotFound(error)) return options.grantedBy === undefined ? notAvailable : { reason: 'StorageRefused', error: `push secret ${where} of ${options.grantedBy} does not exist; the administrator creates it` };
      return { reason: 'StorageUnreadable', error: `push secret ${where} cannot be read: ${describeApiError(error)}` };
    }
  }
}

function withoutClass(store: CheckpointStore | CheckpointFailure): ResolvedStore | CheckpointFailure {
  return 'error' in store ? store : { store };
}

/** Where a namespace's checkpoint images go in `repository`: the namespace is part of the name. */
export function namespaceRepository(repository: string, namespace: string): string {
  return `${repository.replace(/\/+$/, '')}/${CHECKPOINT_REPOSITORY_MARKER}/${namespace}`;
}

/** The path component before the namespace in every checkpoint image name (manifests/restore-image-policy.yaml matches it). */
export const CHECKPOINT_REPOSITORY_MARKER = 'cryo-checkpoints';
