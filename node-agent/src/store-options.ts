/**
 * The flags naming the default store, which the agent (config.ts) and its local mode
 * (local/local-main.ts) both take, declared once. Imports only `@cryo/common/options`, so local
 * mode refuses bad arguments without loading the Kubernetes client.
 */
import { OptionError, parseBoolean, parseOptionalAbsolutePath, type OptionSpec } from '@cryo/common/options';

/** `host[:port]/path`: what the registry store takes, so that a scheme, tag or digest is refused at start, not at the first checkpoint. */
const REPOSITORY = /^([a-z0-9.-]+|\[[0-9a-f:]+\])(:\d+)?(\/[a-z0-9._-]+)+$/;

/** Comma-separated repositories. */
export function parseRepositoryList(raw: string): readonly string[] {
  const repositories = raw.split(',').map((r) => r.trim().replace(/\/+$/, '')).filter((r) => r !== '');
  const bad = repositories.filter((r) => !REPOSITORY.test(r));
  if (bad.length > 0) throw new OptionError(`expected repositories such as registry.example.com/cryo/checkpoints separated by commas (no scheme, tag or digest); not one: ${bad.map((r) => `"${r}"`).join(', ')}`);
  return repositories;
}

/** '' (no default registry) or one repository. */
function parseRepository(raw: string): string {
  const repository = raw.trim().replace(/\/+$/, '');
  if (repository !== '' && !REPOSITORY.test(repository)) {
    throw new OptionError(`expected a repository such as registry.example.com/cryo/checkpoints (host[:port]/path, no scheme, tag or digest), got "${raw}"`);
  }
  return repository;
}

export const storeOptionSpecs = {
  registryRepository: {
    flag: '--registry-repository', env: 'CRYO_REGISTRY_REPOSITORY', default: '', parse: parseRepository,
    description: 'Default store: push checkpoint images to this repository (<host>[:port]/<path>), unless a Checkpoint names its own storage.',
  } satisfies OptionSpec<string>,
  registryAuthFile: {
    flag: '--registry-auth-file', env: 'CRYO_REGISTRY_AUTH_FILE', default: '', parse: parseOptionalAbsolutePath,
    description: 'A docker config JSON (a mounted kubernetes.io/dockerconfigjson Secret) with credentials to push.',
  } satisfies OptionSpec<string>,
  registryCaFile: {
    flag: '--registry-ca-file', env: 'CRYO_REGISTRY_CA_FILE', default: '', parse: parseOptionalAbsolutePath,
    description: "CA bundle for the registry's certificate, besides the system's.",
  } satisfies OptionSpec<string>,
  registryInsecure: {
    flag: '--registry-insecure', env: 'CRYO_REGISTRY_INSECURE', default: false, parse: parseBoolean,
    description: 'Talk plain HTTP to the registry (only for a registry on a trusted network).',
  } satisfies OptionSpec<boolean>,
  directory: {
    flag: '--directory', env: 'CRYO_DIRECTORY', default: '', parse: parseOptionalAbsolutePath,
    description: 'Default store when no registry is set: file archives under this directory (a hostPath or network mount).',
  } satisfies OptionSpec<string>,
};
