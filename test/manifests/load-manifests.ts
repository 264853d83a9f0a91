/**
 * Reads manifests/ the way the two install paths do: Kustomization's resources for
 * `kubectl apply -k`, the directory's YAML files for `kubectl apply -f`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANIFESTS_DIR = join(REPO_ROOT, 'manifests');
// Named without an extension so `kubectl apply -f manifests/` skips it (it is not a Kubernetes object).
export const KUSTOMIZATION_FILE = 'Kustomization';

/** A Kubernetes object as YAML gives it, before anything has checked more than this. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface ManifestDocument {
  file: string;
  /** Position of the document in its file, from 0. */
  index: number;
  object: KubeObject;
}

export interface Kustomization {
  resources: string[];
  [field: string]: unknown;
}

export function readKustomization(): Kustomization {
  const kustomization: unknown = parse(readFileSync(join(MANIFESTS_DIR, KUSTOMIZATION_FILE), 'utf8'));
  if (!isRecord(kustomization) || !Array.isArray(kustomization.resources)) {
    throw new Error(`${KUSTOMIZATION_FILE} has no resources list`);
  }
  return kustomization as Kustomization;
}

/** The files `kubectl apply -f manifests/` reads, in the order it reads them. */
export function yamlFilesInManifestsDir(): string[] {
  return readdirSync(MANIFESTS_DIR)
    .filter((name) => /\.(ya?ml|json)$/.test(name))
    .sort();
}

/** Every object of one file; a YAML error, or a document that is not an object, throws. */
export function loadFile(file: string): ManifestDocument[] {
  const text = readFileSync(join(MANIFESTS_DIR, file), 'utf8');
  const documents = parseAllDocuments(text);
  const objects: ManifestDocument[] = [];
  for (const [index, document] of documents.entries()) {
    if (document.errors.length > 0) {
      throw new Error(`${file} document ${index}: ${document.errors.map((e) => e.message).join('; ')}`);
    }
    const object: unknown = document.toJS();
    // A file may end with `---`, which yields an empty document that kubectl skips as well.
    if (object === null || object === undefined) continue;
    if (!isKubeObject(object)) throw new Error(`${file} document ${index} is no Kubernetes object (apiVersion, kind, metadata.name)`);
    objects.push({ file, index, object });
  }
  return objects;
}

/** Every object `kubectl apply -k manifests/` installs, file by file in Kustomization's order. */
export function loadManifests(): ManifestDocument[] {
  return readKustomization().resources.flatMap(loadFile);
}

export function objectName(document: ManifestDocument): string {
  const { kind, metadata } = document.object;
  return `${document.file}: ${kind} ${metadata.namespace ? `${metadata.namespace}/` : ''}${metadata.name}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isKubeObject(value: unknown): value is KubeObject {
  return isRecord(value) && typeof value.apiVersion === 'string' && typeof value.kind === 'string'
    && isRecord(value.metadata) && typeof value.metadata.name === 'string';
}

/**
 * A deep copy of `value` with the field at `path` (dots, and numbers for list items) set to
 * `to`, or removed when `to` is REMOVE. Tests use it to break a valid object in one place.
 */
export const REMOVE = Symbol('remove');

export function withField<T>(value: T, path: string, to: unknown): T {
  const copy = structuredClone(value);
  const keys = path.split('.');
  let parent: unknown = copy;
  for (const key of keys.slice(0, -1)) {
    parent = (parent as Record<string, unknown>)[key];
    if (typeof parent !== 'object' || parent === null) throw new Error(`${path}: nothing at ${key}`);
  }
  const last = keys[keys.length - 1];
  if (to === REMOVE) delete (parent as Record<string, unknown>)[last];
  else (parent as Record<string, unknown>)[last] = to;
  return copy;
}

/** The one object of `kind` named `name` in manifests/; throws unless there is exactly one. */
export function manifestObject<T>(kind: string, name: string): T & KubeObject {
  const found = loadManifests().map((d) => d.object).filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind} ${name} in manifests/, found ${found.length}`);
  return found[0] as T & KubeObject;
}
