/**
 * What the kube-apiserver does with a CRD's openAPIV3Schema that can be done without one:
 * check that it is structural, and validate objects against it. CEL rules
 * (x-kubernetes-validations) need the apiserver; tests only check that they are there.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** One node of an openAPIV3Schema (apiextensions.k8s.io/v1 JSONSchemaProps), as far as tests use it. */
export interface SchemaNode {
  type?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  required?: string[];
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maxLength?: number;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message?: string; messageExpression?: string }[];
  [keyword: string]: unknown;
}

/** Every schema node with its path (`.spec.containers[]` style), the root first. */
export function* schemaNodes(node: SchemaNode, path = ''): Generator<[string, SchemaNode]> {
  yield [path, node];
  for (const [name, child] of Object.entries(node.properties ?? {})) yield* schemaNodes(child, `${path}.${name}`);
  if (node.items) yield* schemaNodes(node.items, `${path}[]`);
  if (typeof node.additionalProperties === 'object') yield* schemaNodes(node.additionalProperties, `${path}{}`);
}

/**
 * The rules of a structural schema that a mistake in a hand-written CRD breaks most often:
 * every node has a type (unless it opts out with int-or-string or preserve-unknown-fields),
 * no node has both properties and additionalProperties, and the keys of a map-type list are
 * required in its items. Returns what is wrong, path by path.
 */
export function structuralSchemaProblems(root: SchemaNode): string[] {
  const problems: string[] = [];
  for (const [path, node] of schemaNodes(root)) {
    const at = path || '(root)';
    const typeless = node['x-kubernetes-int-or-string'] === true || node['x-kubernetes-preserve-unknown-fields'] === true;
    if (node.type === undefined && !typeless) problems.push(`${at}: no type`);
    if (node.properties && node.additionalProperties !== undefined) problems.push(`${at}: both properties and additionalProperties`);
    if (node.type === 'array' && !node.items) problems.push(`${at}: array without items`);
    if (node['x-kubernetes-list-type'] === 'map') {
      for (const key of node['x-kubernetes-list-map-keys'] ?? []) {
        if (!node.items?.required?.includes(key)) problems.push(`${at}: list-map key ${key} is not required`);
      }
      if ((node['x-kubernetes-list-map-keys'] ?? []).length === 0) problems.push(`${at}: list-type map without keys`);
    }
  }
  if (root.type !== 'object') problems.push('(root): not type object');
  return problems;
}

/**
 * A copy of the schema for ajv: without the Kubernetes extensions (ajv does not know them),
 * and with `additionalProperties: false` wherever properties are listed, because
 * `kubectl apply` asks the apiserver for strict field validation, which refuses unknown fields.
 */
function forAjv(node: SchemaNode): SchemaNode {
  const copy: SchemaNode = {};
  for (const [keyword, value] of Object.entries(node)) {
    if (keyword.startsWith('x-kubernetes-')) continue;
    copy[keyword] = value;
  }
  if (node.properties) {
    copy.properties = Object.fromEntries(Object.entries(node.properties).map(([name, child]) => [name, forAjv(child)]));
    copy.additionalProperties = false;
  }
  if (node.items) copy.items = forAjv(node.items);
  if (typeof node.additionalProperties === 'object') copy.additionalProperties = forAjv(node.additionalProperties);
  return copy;
}

// RFC 3339, as the apiserver's date-time format accepts it (metav1.Time marshals to this).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export function compileSchema(root: SchemaNode): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)) });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  return ajv.compile(forAjv(root));
}

export function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? e.keyword}`).join('; ');
}
