/**
 * Checks a manifest against the Kubernetes API the way the kube-apiserver does on
 * `kubectl apply`: the object's schema (kubernetes-models, generated from the Kubernetes
 * OpenAPI spec), and no unknown fields. kubectl asks for strict field validation by
 * default, so a misspelt field fails the install; the OpenAPI schemas alone allow any
 * extra property, so unknown fields are found from @kubernetes/client-node's field lists.
 */
import * as k8s from '@kubernetes/client-node';
import type { KubeObject } from './load-manifests.ts';

interface Model {
  apiVersion: string;
  kind: string;
  new (data: unknown): { validate(): void };
}

// The kubernetes-models API modules manifests/ uses; an object of any other API fails the test.
const API_MODULES: Record<string, () => Promise<unknown>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
  'rbac.authorization.k8s.io/v1': () => import('kubernetes-models/rbac.authorization.k8s.io/v1'),
  'admissionregistration.k8s.io/v1': () => import('kubernetes-models/admissionregistration.k8s.io/v1'),
  'apiextensions.k8s.io/v1': () => import('kubernetes-models/apiextensions.k8s.io/v1'),
  'storage.k8s.io/v1': () => import('kubernetes-models/storage.k8s.io/v1'),
};

/**
 * The kubernetes-models class for an apiVersion/kind, or an error: a kind the test cannot
 * check counts as a failure, never as a pass.
 */
export async function kubernetesModel(apiVersion: string, kind: string): Promise<Model> {
  const load = Object.hasOwn(API_MODULES, apiVersion) ? API_MODULES[apiVersion] : undefined;
  if (load === undefined) throw new Error(`no kubernetes-models API ${apiVersion} (for ${kind}) in API_MODULES`);
  const model = ((await load()) as Record<string, unknown>)[kind];
  if (!isModel(model) || model.apiVersion !== apiVersion || model.kind !== kind) {
    throw new Error(`kubernetes-models has no kind ${kind} in ${apiVersion}`);
  }
  return model;
}

function isModel(value: unknown): value is Model {
  return typeof value === 'function' && 'apiVersion' in value && 'kind' in value;
}

/** Throws, naming the failing paths, when the object does not match its Kubernetes schema. */
export async function validateAgainstKubernetesSchema(object: KubeObject): Promise<void> {
  const Model = await kubernetesModel(object.apiVersion, object.kind);
  new Model(object).validate();
}

interface Attribute {
  baseName: string;
  type: string;
}

function attributesOf(typeName: string): Attribute[] | undefined {
  const model = (k8s as unknown as Record<string, unknown>)[typeName] as
    | { getAttributeTypeMap?: () => Attribute[] }
    | undefined;
  return typeof model?.getAttributeTypeMap === 'function' ? model.getAttributeTypeMap() : undefined;
}

/** client-node names each API type V<version><Kind>: apps/v1 Deployment is V1Deployment. */
function typeNameOf(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop()!;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/** The JSON paths of fields the Kubernetes API does not define for this kind. */
export function unknownFields(object: KubeObject): string[] {
  const typeName = typeNameOf(object.apiVersion, object.kind);
  if (attributesOf(typeName) === undefined) {
    throw new Error(`@kubernetes/client-node has no type ${typeName} for ${object.apiVersion} ${object.kind}`);
  }
  const found: string[] = [];
  collectUnknownFields(object, typeName, '', found);
  return found;
}

function collectUnknownFields(value: unknown, type: string, path: string, found: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const arrayOf = /^Array<(.+)>$/.exec(type);
  if (arrayOf) {
    if (Array.isArray(value)) value.forEach((item, i) => collectUnknownFields(item, arrayOf[1], `${path}[${i}]`, found));
    return;
  }
  const mapOf = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (mapOf) {
    for (const [key, item] of Object.entries(value)) collectUnknownFields(item, mapOf[1], `${path}.${key}`, found);
    return;
  }
  // Scalars, IntOrString, Date and free-form (`any`) fields have no field list to check.
  const attributes = attributesOf(type);
  if (attributes === undefined || Array.isArray(value)) return;
  for (const [key, item] of Object.entries(value)) {
    const attribute = attributes.find((a) => a.baseName === key);
    if (attribute === undefined) {
      found.push(`${path}.${key}`);
      continue;
    }
    // JSONSchemaProps.items is typed `any` (a schema or a list of them); in a CRD it is one schema.
    const itemType = type === 'V1JSONSchemaProps' && key === 'items' && !Array.isArray(item) ? 'V1JSONSchemaProps' : attribute.type;
    collectUnknownFields(item, itemType, `${path}.${key}`, found);
  }
}
