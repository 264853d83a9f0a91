/**
 * What the fake kube-apiserver serves: one table line per resource, carrying only the
 * per-resource behaviours the real apiserver varies on (scope, /status, field selectors,
 * what DELETE answers), plus the object shapes and the validation every write goes through.
 */
import { CHECKPOINT_GROUP, CHECKPOINT_KIND, CHECKPOINT_PLURAL, CHECKPOINT_SCHEDULE_KIND, CHECKPOINT_SCHEDULE_PLURAL, CHECKPOINT_STORAGE_CLASS_KIND, CHECKPOINT_STORAGE_CLASS_PLURAL, CHECKPOINT_VERSION, MIGRATION_KIND, MIGRATION_PLURAL } from '@cryo/common';
import { ApiError, invalid } from './kube-apiserver-status.ts';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [key: string]: unknown;
}

/** A stored object as JSON: timestamps are RFC 3339 strings, never Dates. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** What test-side writes accept: plain JSON or client-node model instances (V1Pod, ...). */
export interface KubeObjectInput {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

export interface ResourceType {
  /** '' for the core group (served under /api/v1). */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Has a /status subresource: main-resource writes keep the old status, /status writes change only status. */
  statusSubresource?: boolean;
  /** What POST does with a body's status when there is a /status: drop it (default), keep it (nodes), or set this. */
  statusOnCreate?: 'keep' | Record<string, unknown>;
  /** Field selector paths beyond metadata.name and metadata.namespace, which every resource supports. */
  selectableFields?: readonly string[];
  /** Has pods' /eviction subresource: POST a policy/v1 Eviction to delete the object (see FakeKubeApiServer). */
  evictionSubresource?: boolean;
  /** DELETE answers with the deleted object (pods) instead of a Success Status. */
  deleteReturnsObject?: boolean;
  /**
   * A CustomResource: list items keep apiVersion/kind (built-in lists leave them out) and PUT
   * without metadata.resourceVersion is refused, as the apiextensions apiserver does.
   */
  customResource?: boolean;
  /** Names are DNS labels (namespaces) rather than DNS subdomains. */
  nameFormat?: 'subdomain' | 'label';
  /** Conversion and defaulting the apiserver applies to every write, in place. */
  normalize?: (obj: KubeObject) => void;
  /**
   * What decoding a written body into the Go type refuses (a time that does not parse, say):
   * returns the decoder's error, which the write answers with 400 (see decodeError).
   */
  decode?: (obj: KubeObject) => string | undefined;
}

/** As the v1 → internal conversion does: stringData lands base64-encoded in data and is never stored. */
function normalizeSecret(secret: KubeObject): void {
  const stringData = secret.stringData;
  if (typeof stringData === 'object' && stringData !== null) {
    const data: Record<string, unknown> = { ...(secret.data as Record<string, unknown> | undefined) };
    for (const [key, value] of Object.entries(stringData)) data[key] = Buffer.from(String(value)).toString('base64');
    secret.data = data;
  }
  delete secret.stringData;
  secret.type ??= 'Opaque';
}

/** metav1.MicroTime's layout (RFC3339Micro): Go's time.Parse wants exactly six fractional digits. */
const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';

/**
 * Decodes a metav1.MicroTime as its UnmarshalJSON does: null is the zero time, a string must
 * parse with RFC3339Micro. Returns Go's error text, or undefined when it decodes.
 */
function microTimeError(value: unknown, field: string, goType: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    const jsonType = Array.isArray(value) ? 'array' : typeof value === 'object' ? 'object' : typeof value;
    return `json: cannot unmarshal ${jsonType} into Go struct field ${goType}.${field} of type string`;
  }
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(.*)$/s.exec(value);
  let element: string | undefined;
  let rest = value;
  if (match === null) {
    element = RFC3339_MICRO;
  } else {
    rest = match[2];
    if (!/^[.,]\d{6}/.test(rest)) {
      element = '.000000';
    } else {
      rest = rest.slice(7);
      if (!/^(Z|[+-]\d{2}:\d{2})$/.test(rest)) element = 'Z07:00';
    }
  }
  if (element === undefined && !Number.isNaN(Date.parse(value.replace(',', '.')))) return undefined;
  if (element === undefined) return `parsing time ${JSON.stringify(value)}: out of range`;
  return `parsing time ${JSON.stringify(value)} as ${JSON.stringify(RFC3339_MICRO)}: cannot parse ${JSON.stringify(rest)} as ${JSON.stringify(element)}`;
}

/** The MicroTime fields of an Event (events.k8s.io/v1 and core v1 alike): eventTime and series.lastObservedTime. */
function decodeEvent(event: KubeObject): string | undefined {
  const series = event.series;
  const lastObserved = typeof series === 'object' && series !== null ? (series as Record<string, unknown>).lastObservedTime : undefined;
  return microTimeError(event.eventTime, 'eventTime', 'Event') ?? microTimeError(lastObserved, 'series.lastObservedTime', 'Event');
}

const EVENT_FIELDS = [
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
];

const POD_FIELDS = [
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.nominatedNodeName',
];

/** The built-in table; add a resource with one line. */
export const RESOURCES: readonly ResourceType[] = [
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, statusSubresource: true, statusOnCreate: { phase: 'Pending' }, deleteReturnsObject: true, selectableFields: POD_FIELDS, evictionSubresource: true },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, selectableFields: ['type'], normalize: normalizeSecret },
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, selectableFields: EVENT_FIELDS, decode: decodeEvent },
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, statusSubresource: true, statusOnCreate: { phase: 'Active' }, selectableFields: ['status.phase'], nameFormat: 'label' },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false, statusSubresource: true, statusOnCreate: 'keep', selectableFields: ['spec.unschedulable'] },
  { group: '', version: 'v1', plural: 'persistentvolumeclaims', kind: 'PersistentVolumeClaim', namespaced: true, statusSubresource: true, statusOnCreate: { phase: 'Pending' } },
  { group: '', version: 'v1', plural: 'persistentvolumes', kind: 'PersistentVolume', namespaced: false, statusSubresource: true, statusOnCreate: { phase: 'Pending' } },
  { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true, selectableFields: ['regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid', 'reason', 'reportingController', 'type'], decode: decodeEvent },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true, statusSubresource: true },
  { group: 'apps', version: 'v1', plural: 'statefulsets', kind: 'StatefulSet', namespaced: true, statusSubresource: true },
  { group: 'apps', version: 'v1', plural: 'daemonsets', kind: 'DaemonSet', namespaced: true, statusSubresource: true },
  { group: 'apps', version: 'v1', plural: 'replicasets', kind: 'ReplicaSet', namespaced: true, statusSubresource: true },
  { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true, statusSubresource: true },
  { group: 'batch', version: 'v1', plural: 'cronjobs', kind: 'CronJob', namespaced: true, statusSubresource: true },
  { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, kind: CHECKPOINT_KIND, namespaced: true, statusSubresource: true, customResource: true },
  { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_STORAGE_CLASS_PLURAL, kind: CHECKPOINT_STORAGE_CLASS_KIND, namespaced: false, customResource: true },
  { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: MIGRATION_PLURAL, kind: MIGRATION_KIND, namespaced: true, statusSubresource: true, customResource: true },
  { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_SCHEDULE_PLURAL, kind: CHECKPOINT_SCHEDULE_KIND, namespaced: true, statusSubresource: true, customResource: true },
];

export function apiVersionOf(resource: ResourceType): string {
  return resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
}

/** The `group/version/plural` every lookup goes by. */
export function resourceKey(apiVersion: string, plural: string): string {
  return `${apiVersion}/${plural}`;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function isValidLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

export function isValidLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && QUALIFIED_NAME.test(value));
}

/**
 * The checks the real apiserver makes that catch real bugs: name syntax (an uppercase or
 * overlong generated name is refused), label syntax, and string-only label/annotation values.
 */
export function validateObject(resource: ResourceType, obj: KubeObject): void {
  const meta = obj.metadata ?? {};
  const name = meta.name ?? '';
  const label = resource.nameFormat === 'label';
  if (label ? name.length > 63 || !DNS_LABEL.test(name) : name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    const rule = label ? 'a lowercase RFC 1123 label' : 'a lowercase RFC 1123 subdomain';
    throw invalid(resource, name, 'metadata.name', `Invalid value: "${name}": must be ${rule}`);
  }
  // The real apiserver checks generateName as a name prefix: one trailing '-' is allowed (the
  // random suffix follows it), a trailing '.' is not (ValidateObjectMeta, maskTrailingDash).
  const prefix = (meta.generateName ?? '').replace(/-$/, '');
  if (meta.generateName !== undefined && meta.generateName !== '' && (label ? !DNS_LABEL.test(prefix) : !DNS_SUBDOMAIN.test(prefix))) {
    const rule = label ? 'a lowercase RFC 1123 label' : 'a lowercase RFC 1123 subdomain';
    throw invalid(resource, name, 'metadata.generateName', `Invalid value: "${meta.generateName}": ${rule} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
  }
  for (const field of ['labels', 'annotations'] as const) {
    const map: unknown = meta[field];
    if (map === undefined || map === null) continue;
    if (typeof map !== 'object' || Array.isArray(map)) throw new ApiError(400, `metadata.${field} must be an object of strings`);
    for (const [key, value] of Object.entries(map)) {
      if (typeof value !== 'string') {
        throw new ApiError(400, `json: cannot unmarshal ${typeof value} into Go struct field ObjectMeta.metadata.${field} of type string`);
      }
      if (!isValidLabelKey(key)) throw invalid(resource, name, `metadata.${field}`, `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
      if (field === 'labels' && !isValidLabelValue(value)) {
        throw invalid(resource, name, 'metadata.labels', `Invalid value: "${value}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
      }
    }
  }
}
