/**
 * Repository references as a Checkpoint names them (`host[:port]/path`), and the tags the store
 * gives checkpoint images. Only the syntax the OCI distribution spec allows passes: a reference
 * that would silently mean Docker Hub, or carries a tag or digest, is refused here rather than
 * failing later as an HTTP error.
 */
import { createHash } from 'node:crypto';

export interface RepositoryReference {
  /** `host[:port]` as the docker config's `auths` keys name it. */
  registry: string;
  /** The repository path inside the registry, e.g. `checkpoints/orders-api`. */
  name: string;
}

// distribution/reference: path components are lowercase alphanumerics separated by `.`, `_`, `__` or dashes.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

export function parseRepository(repository: string): RepositoryReference {
  const fail = (why: string): never => {
    throw new Error(`invalid registry repository "${repository}": ${why}; write it as host[:port]/path, e.g. 127.0.0.1:5000/checkpoints/app`);
  };
  if (repository.includes('@')) fail('it must not carry a digest (the store pins each image by digest itself)');
  if (repository.includes('://')) fail('it must not carry a URL scheme (plain http is chosen with the insecure option)');
  const slash = repository.indexOf('/');
  if (slash < 0) fail('it names no registry host');
  const registry = repository.slice(0, slash);
  const name = repository.slice(slash + 1);
  // Docker's rule: the first component is a host only if it has a dot or a port, or is localhost.
  if (!HOST.test(registry) || !(registry.includes('.') || registry.includes(':') || registry === 'localhost')) {
    fail(`"${registry}" is not a registry host (it needs a dot or a port, or must be localhost)`);
  }
  if (name.length === 0 || name.length > 255) fail('the path must have 1 to 255 characters');
  const last = name.split('/').at(-1) ?? '';
  if (last.includes(':')) fail('it must not carry a tag (the store tags each image itself)');
  if (!name.split('/').every((c) => COMPONENT.test(c))) fail('path components must be lowercase letters and digits, separated by ".", "_", "__" or "-"');
  return { registry, name };
}

export interface TagInput {
  namespace: string;
  checkpointName: string;
  checkpointUid: string;
  /** Absent for the pod checkpoint's index: `<namespace>_<checkpoint>_<uid8>`, one part fewer than any container's tag. */
  containerName?: string;
}

const MAX_TAG = 128;

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * `<namespace>_<checkpoint>_<container>_<uid8>`: `_` never occurs in Kubernetes names, so the
 * parts stay readable and unambiguous, and the Checkpoint uid's first 8 hex digits keep a
 * re-created Checkpoint of the same name from retagging (and so hiding from list()) the older
 * image. Past the 128 characters a tag may have, the readable part is cut and a hash of the
 * whole name keeps it unique.
 */
export function checkpointTag(input: TagInput): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '-');
  const base = [input.namespace, input.checkpointName, ...(input.containerName === undefined ? [] : [input.containerName])].map(clean).join('_');
  const uid = input.checkpointUid.replace(/[^0-9a-fA-F]/g, '').slice(0, 8).toLowerCase() || shortHash(base);
  const full = `${base}_${uid}`;
  const tag = full.length <= MAX_TAG ? full : `${base.slice(0, MAX_TAG - uid.length - 10)}-${shortHash(full)}_${uid}`;
  // A tag must start with a word character; Kubernetes names always do.
  return /^[A-Za-z0-9_]/.test(tag) ? tag : `_${tag.slice(1)}`;
}
