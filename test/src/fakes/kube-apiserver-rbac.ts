/**
 * RBAC, which the fake kube-apiserver leaves out, checked after the fact: the attributes a real
 * kube-apiserver authorizes a recorded request by (verb, API group, resource with its
 * subresource, namespace, name) and whether a component's roles grant them. A list or watch that
 * selects one object with `fieldSelector=metadata.name=<name>` carries that name, as the real
 * authorizer's does, so `resourceNames` can allow it.
 */
import type { V1PolicyRule } from '@kubernetes/client-node';
import type { RecordedRequest } from './kube-apiserver.ts';

export interface RbacAttributes {
  verb: string;
  /** '' for the core group. */
  apiGroup: string;
  /** With its subresource: `pods/eviction`. */
  resource: string;
  namespace?: string;
  name?: string;
}

/** What a role grants where: a Role's rules in its namespace, a ClusterRole's (bound cluster-wide) everywhere. */
export interface RbacGrant {
  /** Absent: every namespace, and cluster-scoped resources. */
  namespace?: string;
  rules: readonly V1PolicyRule[];
}

/** The attributes of a resource request; undefined for a non-resource URL (`/version`, `/openapi/v2`). */
export function rbacAttributesOf(request: Pick<RecordedRequest, 'method' | 'path' | 'query'>): RbacAttributes | undefined {
  const parts = request.path.split('/').filter((part) => part !== '');
  let rest: string[];
  let apiGroup: string;
  if (parts[0] === 'api') [apiGroup, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis') [apiGroup, rest] = [parts[1], parts.slice(3)];
  else return undefined;
  let namespace: string | undefined;
  // `/api/v1/namespaces/<name>` is the Namespace itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
  const [resource, pathName, subresource] = rest;
  if (resource === undefined) return undefined;
  const selected = /^metadata\.name=([^,]+)$/.exec(request.query.get('fieldSelector') ?? '')?.[1];
  const name = pathName ?? (request.method === 'GET' ? selected : undefined);
  const verb = verbOf(request.method, pathName !== undefined, request.query);
  return { verb, apiGroup, resource: subresource === undefined ? resource : `${resource}/${subresource}`, ...(namespace === undefined ? {} : { namespace }), ...(name === undefined ? {} : { name }) };
}

function verbOf(method: string, named: boolean, query: URLSearchParams): string {
  switch (method) {
    case 'GET':
      return named ? 'get' : ['true', '1'].includes(query.get('watch') ?? '') ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

/** Whether one rule allows the request (wildcards included). */
export function ruleAllows(rule: V1PolicyRule, request: RbacAttributes): boolean {
  const has = (list: readonly string[] | undefined, value: string) => list?.includes('*') === true || list?.includes(value) === true;
  if (!has(rule.verbs, request.verb) || !has(rule.apiGroups, request.apiGroup) || !has(rule.resources, request.resource)) return false;
  if (rule.resourceNames === undefined || rule.resourceNames.length === 0) return true;
  return request.name !== undefined && rule.resourceNames.includes(request.name);
}

/** Whether any of the grants allows the request (a namespaced grant only in its namespace). */
export function isGranted(request: RbacAttributes, grants: readonly RbacGrant[]): boolean {
  return grants.some((grant) => (grant.namespace === undefined || grant.namespace === request.namespace) && grant.rules.some((rule) => ruleAllows(rule, request)));
}

/** `create secrets cryo-system/cryo-webhook-tls`: a request's attributes as a line of a test's expectation. */
export function describeRbacAttributes({ verb, apiGroup, resource, namespace, name }: RbacAttributes): string {
  const where = [namespace, name].filter((part) => part !== undefined).join('/');
  return `${verb} ${apiGroup === '' ? '' : `${apiGroup}/`}${resource}${where === '' ? '' : ` ${where}`}`;
}
