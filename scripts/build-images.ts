#!/usr/bin/env node
/**
 * npm run images -- --registry <host>[:port]/<path>: builds Cryo's three images (webhook,
 * node-agent, controller) from their Dockerfiles with podman, buildah or docker, pushes them to
 * <registry>/<component>:<tag>, and writes their names and digests into the images: of
 * manifests/Kustomization, the one place the install names them. Then `kubectl apply -k
 * manifests/` installs those images. README.md ("Install on a cluster") shows the steps.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, parseDocument } from 'yaml';
import { helpText, OptionError, parseBoolean, parseString, readOptions, type OptionSpec } from '@cryo/common/options';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const COMPONENTS = ['webhook', 'node-agent', 'controller'] as const;
export const BUILDERS = ['podman', 'buildah', 'docker'] as const;
type Builder = (typeof BUILDERS)[number];
/** The registry the manifests' images name until images: sets them (manifests/Kustomization). */
const UNSET_IMAGE_REGISTRY = 'cryo.invalid';

/** A component's package version, the tag its image gets unless --tag says. */
const packageVersion = (component: string): string => (JSON.parse(readFileSync(join(REPO_ROOT, component, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * `<host>[:port]/<path>`, lower case, without a tag: the host is required, because an image name
 * whose first part is no host (`someone/cryo`) is pulled from the container tools' default public
 * registry, from a namespace that may not be yours.
 */
export function parseImageRegistry(raw: string): string {
  const registry = raw.trim().replace(/\/+$/, '');
  const [host, ...path] = registry.split('/');
  const namesHost = host.includes('.') || host.includes(':') || host === 'localhost';
  if (!/^([a-z0-9.-]+|\[[0-9a-f:]+\])(:\d+)?(\/[a-z0-9._-]+)+$/.test(registry) || !namesHost || path.length === 0) {
    throw new OptionError(
      `expected <host>[:port]/<path> of your registry, lower case, with no scheme or tag, such as <your-registry-host>/cryo, got "${raw}"` +
        (namesHost || registry.includes('://') ? '' : `: "${host}" is no registry host (no dot, port or localhost), and an image named so would be pulled from the namespace "${host}" of the container tools' default public registry`),
    );
  }
  if (host.endsWith('.invalid')) throw new OptionError(`${host} is the placeholder the manifests name until images are set; give your registry`);
  return registry;
}

function parseBuilder(raw: string): Builder | '' {
  if (raw === '' || (BUILDERS as readonly string[]).includes(raw)) return raw as Builder | '';
  throw new OptionError(`expected one of ${BUILDERS.join(', ')}, got "${raw}"`);
}

function parseTag(raw: string): string {
  if (raw === '') return raw;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(raw)) throw new OptionError(`expected an image tag (letters, digits, _ . -, at most 128), got "${raw}"`);
  return raw;
}

export const buildImagesOptionSpecs = {
  registry: {
    flag: '--registry', env: 'CRYO_IMAGE_REGISTRY', default: '', parse: parseImageRegistry,
    description: 'Where the images go: <registry>/webhook, <registry>/node-agent and <registry>/controller. Required.',
  } satisfies OptionSpec<string>,
  tag: {
    flag: '--tag', env: 'CRYO_IMAGE_TAG', default: '', parse: parseTag, defaultText: "each component's package version",
    description: 'The tag of all three images.',
  } satisfies OptionSpec<string>,
  builder: {
    flag: '--builder', env: 'CRYO_IMAGE_BUILDER', default: '' as Builder | '', parse: parseBuilder, defaultText: `the first of ${BUILDERS.join(', ')} on PATH`,
    description: 'What builds and pushes: podman, buildah or docker. podman and buildah read registries.conf and the credentials of `podman login`; docker, those of `docker login`.',
  } satisfies OptionSpec<Builder | ''>,
  baseImage: {
    flag: '--base-image', env: 'CRYO_BASE_IMAGE', default: '', parse: parseString, defaultText: "the Dockerfiles' BASE_IMAGE",
    description: 'An image with Node 24 and npm on PATH to build on (the Dockerfiles\' build argument BASE_IMAGE), e.g. a mirror of it in your registry.',
  } satisfies OptionSpec<string>,
  push: {
    flag: '--push', env: 'CRYO_IMAGE_PUSH', default: true, parse: parseBoolean,
    description: 'Push the images and pin them by digest in the Kustomization; --no-push only builds them, and the Kustomization names the tag.',
  } satisfies OptionSpec<boolean>,
  kustomization: {
    flag: '--kustomization', env: 'CRYO_KUSTOMIZATION', default: join(REPO_ROOT, 'manifests/Kustomization'), parse: (raw: string) => resolve(raw), defaultText: 'manifests/Kustomization',
    description: 'The kustomization whose images: to set.',
  } satisfies OptionSpec<string>,
};

export type BuildImagesOptions = { [K in keyof typeof buildImagesOptionSpecs]: (typeof buildImagesOptionSpecs)[K]['default'] };

/** One command to run: its arguments, and for a push, where the builder writes the digest. */
export interface Step {
  what: string;
  argv: string[];
}

export interface ImageBuild {
  component: (typeof COMPONENTS)[number];
  reference: string;
  build: Step;
  push?: Step;
}

/** The builds and pushes, in order; `digestFile(component)`: where podman and buildah write a pushed image's digest. */
export function planImageBuilds(options: BuildImagesOptions, builder: Builder, digestFile: (component: string) => string): ImageBuild[] {
  return COMPONENTS.map((component) => {
    const reference = `${options.registry}/${component}:${options.tag === '' ? packageVersion(component) : options.tag}`;
    const buildArgs = options.baseImage === '' ? [] : ['--build-arg', `BASE_IMAGE=${options.baseImage}`];
    const build: Step = { what: `build ${reference}`, argv: [builder, 'build', '-f', join(REPO_ROOT, component, 'Dockerfile'), '-t', reference, ...buildArgs, REPO_ROOT] };
    if (!options.push) return { component, reference, build };
    const digestArgs = builder === 'docker' ? [] : ['--digestfile', digestFile(component)];
    return { component, reference, build, push: { what: `push ${reference}`, argv: [builder, 'push', ...digestArgs, reference] } };
  });
}

/**
 * The kustomization text with each component's images: entry (name cryo.invalid/<component>)
 * pointing at `newName`, pinned by `digest` when known, else at `newTag`; comments and the other
 * entries stay as they are. An entry missing is added.
 */
export function setKustomizationImages(text: string, images: { component: string; newName: string; newTag: string; digest?: string }[]): string {
  const document = parseDocument(text);
  if (document.errors.length > 0) throw new Error(`the kustomization is no YAML: ${document.errors[0].message}`);
  if (!isMap(document.contents)) throw new Error('the kustomization is no YAML map');
  if (!document.has('images')) document.set('images', document.createNode([]));
  const list = document.get('images');
  if (!isSeq(list)) throw new Error('the kustomization\'s images: is no list');
  for (const image of images) {
    const name = `${UNSET_IMAGE_REGISTRY}/${image.component}`;
    let entry = list.items.find((item) => isMap(item) && item.get('name') === name);
    if (!isMap(entry)) {
      entry = document.createNode({ name });
      list.items.push(entry);
    }
    if (!isMap(entry)) throw new Error(`images: entry ${name} is no map`);
    entry.set('newName', image.newName);
    if (image.digest !== undefined) {
      entry.delete('newTag');
      entry.set('digest', image.digest);
    } else {
      entry.delete('digest');
      entry.set('newTag', image.newTag);
    }
  }
  return document.toString({ lineWidth: 0 });
}

/** The first builder on PATH. */
function findBuilder(path: string): Builder | undefined {
  const executable = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const dirs = path.split(delimiter).filter((d) => d !== '');
  return BUILDERS.find((builder) => dirs.some((dir) => executable(join(dir, builder))));
}

function run(step: Step): void {
  console.error(`cryo images: ${step.what}: ${step.argv.join(' ')}`);
  const result = spawnSync(step.argv[0], step.argv.slice(1), { stdio: 'inherit' });
  if (result.error !== undefined) throw new Error(`${step.what}: ${step.argv[0]} could not run: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${step.what} failed (${step.argv[0]} exited ${result.status ?? result.signal}); its output above says why`);
}

/** The digest a push gave: from podman's or buildah's --digestfile, or from docker's RepoDigests. */
function pushedDigest(builder: Builder, reference: string, digestFile: string): string {
  let digest: string;
  if (builder === 'docker') {
    const result = spawnSync('docker', ['image', 'inspect', '--format', '{{range .RepoDigests}}{{println .}}{{end}}', reference], { encoding: 'utf8' });
    const repository = reference.slice(0, reference.lastIndexOf(':'));
    digest = result.stdout.split('\n').find((line) => line.startsWith(`${repository}@`))?.split('@')[1] ?? '';
  } else {
    digest = readFileSync(digestFile, 'utf8').trim();
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`pushed ${reference}, but ${builder} gave no digest for it ("${digest}")`);
  return digest;
}

export function main(argv: readonly string[], env: NodeJS.ProcessEnv): number {
  const usage = 'npm run images -- --registry <your-registry>/cryo [flags]';
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(helpText(usage, buildImagesOptionSpecs, 'Builds the webhook, node-agent and controller images from this repository, pushes them, and sets them in manifests/Kustomization.'));
    return 0;
  }
  let options: BuildImagesOptions;
  try {
    options = readOptions(buildImagesOptionSpecs, argv, env);
    if (options.registry === '') throw new OptionError('--registry is required: where to push, e.g. --registry <your-registry>/cryo (run with --help for every flag)');
  } catch (error) {
    console.error(`cryo images: ${(error as Error).message}`);
    return 2;
  }
  const builder = options.builder === '' ? findBuilder(env.PATH ?? '') : options.builder;
  if (builder === undefined) {
    console.error(`cryo images: none of ${BUILDERS.join(', ')} is on PATH; install one (Debian: apt-get install podman) or name one with --builder`);
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cryo-images-'));
  try {
    const builds = planImageBuilds(options, builder, (component) => join(dir, `${component}.digest`));
    for (const { build } of builds) run(build);
    const images = builds.map(({ component, reference, push }): { component: string; newName: string; newTag: string; digest?: string } => {
      const image = { component, newName: `${options.registry}/${component}`, newTag: reference.slice(reference.lastIndexOf(':') + 1) };
      if (push === undefined) return image;
      run(push);
      return { ...image, digest: pushedDigest(builder, reference, join(dir, `${component}.digest`)) };
    });
    writeFileSync(options.kustomization, setKustomizationImages(readFileSync(options.kustomization, 'utf8'), images));
    for (const image of images) console.log(`${image.component} ${image.newName}${image.digest === undefined ? `:${image.newTag}` : `@${image.digest}`}`);
    console.error(`cryo images: set in ${options.kustomization}; install with kubectl apply -k ${resolve(options.kustomization, '..')}`);
    return 0;
  } catch (error) {
    console.error(`cryo images: ${(error as Error).message}`);
    return 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2), process.env);
}
