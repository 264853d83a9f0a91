/**
 * The fake apiserver's storage and write semantics, independent of HTTP: one global integer
 * resourceVersion bumped by every write, a history of change events for watches to resume
 * from, and create/update/patch/delete behaving as the generic registry does (system-owned
 * metadata, optimistic concurrency, /status, generation, finalizers, no-op writes).
 * HTTP requests and test-side controls both write through here, so both produce the same
 * watch events and resourceVersions.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { applyPatchOfType } from './kube-apiserver-patch.ts';
import { apiVersionOf, resourceKey, validateObject, type KubeObject, type KubeObjectInput, type ObjectMeta, type ResourceType } from './kube-apiserver-resources.ts';
import type { FieldMatcher, LabelMatcher } from './kube-apiserver-selectors.ts';
import { alreadyExists, ApiError, conflict, decodeError, expired, invalid, notFound } from './kube-apiserver-status.ts';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type WatchEventType = ChangeType | 'BOOKMARK' | 'ERROR';

export interface ObjectFilter {
  /** Only this namespace; all namespaces when absent. */
  namespace?: string;
  /** Only this name (a watch on a single object's path). */
  name?: string;
  labels?: LabelMatcher;
  fields?: FieldMatcher;
}

/** Where a watch's events go; the HTTP layer writes them as JSON lines. */
export type WatchSink = (type: ChangeType, object: KubeObject) => void;

export type Subresource = 'status' | undefined;

export interface DeleteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
}

interface ChangeEvent {
  resourceVersion: number;
  resource: ResourceType;
  type: ChangeType;
  object: KubeObject;
  /** The object before a MODIFIED, to tell when it starts or stops matching a selector. */
  previous: KubeObject | undefined;
}

interface Subscription {
  resource: ResourceType;
  filter: ObjectFilter;
  sink: WatchSink;
}

export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** RFC 3339 with second precision, as metav1.Time marshals. */
function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const GENERATE_NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** Everything but metadata (and status, where /status owns it): what `generation` tracks. */
function specOf(resource: ResourceType, obj: KubeObject): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...obj };
  delete rest.metadata;
  delete rest.apiVersion;
  delete rest.kind;
  if (resource.statusSubresource === true) delete rest.status;
  return rest;
}

export class ResourceStore {
  readonly resources: readonly ResourceType[];
  private rv = 1;
  /** Watches from before this resourceVersion get 410 Expired. */
  private compactedRv = 1;
  private history: ChangeEvent[] = [];
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private readonly subscriptions = new Set<Subscription>();
  private readonly byPlural = new Map<string, ResourceType>();
  private readonly byKind = new Map<string, ResourceType>();

  constructor(resources: readonly ResourceType[]) {
    this.resources = resources;
    for (const resource of resources) {
      const apiVersion = apiVersionOf(resource);
      this.byPlural.set(resourceKey(apiVersion, resource.plural), resource);
      this.byKind.set(resourceKey(apiVersion, resource.kind), resource);
      this.objects.set(resource, new Map());
    }
  }

  get resourceVersion(): number {
    return this.rv;
  }

  lookup(apiVersion: string, plural: string): ResourceType | undefined {
    return this.byPlural.get(resourceKey(apiVersion, plural));
  }

  /** The resource for a test-side call; unknown ones are a test bug, so throw plainly. */
  require(apiVersion: string, plural: string): ResourceType {
    const resource = this.lookup(apiVersion, plural);
    if (resource === undefined) throw new Error(`the fake kube-apiserver does not serve ${apiVersion} ${plural}`);
    return resource;
  }

  get(resource: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.stored(resource, namespace, name);
    return obj === undefined ? undefined : cloneJson(obj);
  }

  /** Matching objects sorted by namespace and name, as etcd's key order lists them. */
  list(resource: ResourceType, filter: ObjectFilter = {}): KubeObject[] {
    const keys = [...this.table(resource).keys()].sort();
    return keys.map((key) => this.table(resource).get(key)!).filter((obj) => matches(filter, obj)).map(cloneJson);
  }

  create(resource: ResourceType, namespace: string | undefined, body: unknown, dryRun = false): KubeObject {
    const obj = checkBody(resource, body);
    resource.normalize?.(obj);
    const meta: ObjectMeta = (obj.metadata ??= {});
    if (resource.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw new ApiError(400, 'the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
    // etcd3's store refuses this as an internal error: the classic "re-create a fetched object" bug.
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
      throw new ApiError(500, 'resourceVersion should not be set on objects to be created');
    }
    if (meta.name === undefined || meta.name === '') {
      if (meta.generateName === undefined || meta.generateName === '') {
        throw invalid(resource, '', 'metadata.name', 'Required value: name or generateName is required');
      }
      meta.name = this.generatedName(resource, meta.namespace, meta.generateName);
    }
    validateObject(resource, obj);
    if (this.stored(resource, meta.namespace, meta.name) !== undefined) throw alreadyExists(resource, meta.name);
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    meta.generation = 1;
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (resource.statusSubresource === true && resource.statusOnCreate !== 'keep') {
      if (resource.statusOnCreate === undefined) delete obj.status;
      else obj.status = cloneJson(resource.statusOnCreate);
    }
    return dryRun ? obj : this.commit(resource, 'ADDED', obj, undefined);
  }

  update(resource: ResourceType, namespace: string | undefined, name: string, subresource: Subresource, body: unknown, dryRun = false): KubeObject {
    const current = this.mustGet(resource, namespace, name);
    const desired = checkBody(resource, body);
    checkIdentity(resource, namespace, name, desired);
    const rv = desired.metadata?.resourceVersion;
    if (rv === undefined || rv === '') {
      if (resource.customResource === true) {
        throw invalid(resource, name, 'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update');
      }
    } else if (rv !== current.metadata!.resourceVersion) {
      throw conflict(resource, name);
    }
    checkUid(resource, current, desired);
    return this.write(resource, current, desired, subresource, dryRun);
  }

  patch(resource: ResourceType, namespace: string | undefined, name: string, subresource: Subresource, contentType: string, patch: unknown, dryRun = false): KubeObject {
    const current = this.mustGet(resource, namespace, name);
    const desired = checkBody(resource, applyPatchOfType(contentType, current, patch));
    checkIdentity(resource, namespace, name, desired);
    // A patch starts from the current object, so a different resourceVersion was set by the patch: a precondition.
    const rv = desired.metadata?.resourceVersion;
    if (rv !== undefined && rv !== current.metadata!.resourceVersion) throw conflict(resource, name);
    checkUid(resource, current, desired);
    return this.write(resource, current, desired, subresource, dryRun);
  }

  /**
   * Deletes at once, or (with finalizers) marks the object terminating; `deleted` tells which.
   * Graceful pod deletion is not modelled: pods go at once, as with gracePeriodSeconds=0.
   */
  delete(resource: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions = {}, dryRun = false): { object: KubeObject; deleted: boolean } {
    const current = this.mustGet(resource, namespace, name);
    const preconditions = options.preconditions ?? {};
    if (preconditions.uid !== undefined && preconditions.uid !== current.metadata!.uid) {
      throw conflict(resource, name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata!.uid}`);
    }
    if (preconditions.resourceVersion !== undefined && preconditions.resourceVersion !== current.metadata!.resourceVersion) {
      throw conflict(resource, name, `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata!.resourceVersion}`);
    }
    if ((current.metadata!.finalizers ?? []).length > 0) {
      if (current.metadata!.deletionTimestamp !== undefined) return { object: cloneJson(current), deleted: false };
      const terminating = cloneJson(current);
      terminating.metadata!.deletionTimestamp = now();
      terminating.metadata!.deletionGracePeriodSeconds = 0;
      return { object: dryRun ? terminating : this.commit(resource, 'MODIFIED', terminating, current), deleted: false };
    }
    return { object: dryRun ? cloneJson(current) : this.commit(resource, 'DELETED', current, current), deleted: true };
  }

  /** Test-side create-or-replace: the object is stored as given (status included), system fields filled in. */
  put(input: KubeObjectInput): KubeObject {
    const obj = cloneJson<unknown>(input) as KubeObject;
    const resource = this.byKind.get(resourceKey(obj.apiVersion ?? '', obj.kind ?? ''));
    if (resource === undefined) throw new Error(`the fake kube-apiserver does not serve apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    const meta: ObjectMeta = (obj.metadata ??= {});
    if (meta.name === undefined || meta.name === '') throw new Error(`put: ${resource.kind} needs metadata.name`);
    if (resource.namespaced && (meta.namespace === undefined || meta.namespace === '')) throw new Error(`put: ${resource.kind} ${meta.name} needs metadata.namespace`);
    if (!resource.namespaced) delete meta.namespace;
    resource.normalize?.(obj);
    validateObject(resource, obj);
    const current = this.stored(resource, meta.namespace, meta.name);
    if (current === undefined) {
      meta.uid ??= randomUUID();
      meta.creationTimestamp ??= now();
      meta.generation ??= 1;
      delete meta.resourceVersion;
      return this.commit(resource, 'ADDED', obj, undefined);
    }
    const old = current.metadata!;
    meta.uid ??= old.uid;
    meta.creationTimestamp ??= old.creationTimestamp;
    if (old.generation !== undefined) meta.generation ??= old.generation + (isDeepStrictEqual(specOf(resource, obj), specOf(resource, current)) ? 0 : 1);
    meta.resourceVersion = old.resourceVersion;
    if (isDeepStrictEqual(obj, current)) return cloneJson(current);
    return this.commit(resource, 'MODIFIED', obj, current);
  }

  /** Test-side delete, finalizers or not. */
  remove(resource: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const current = this.stored(resource, namespace, name);
    return current === undefined ? undefined : this.commit(resource, 'DELETED', current, current);
  }

  /** Forgets the change history: watches from an older resourceVersion now get 410 Expired. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }

  /**
   * Starts a watch: without `fromRv` the current matching objects arrive as ADDED; with it, every
   * change after it is replayed (410 Expired when compacted away). Live events follow until the
   * returned function unsubscribes.
   */
  watch(resource: ResourceType, filter: ObjectFilter, fromRv: number | undefined, sink: WatchSink): () => void {
    if (fromRv === undefined) {
      for (const obj of this.list(resource, filter)) sink('ADDED', obj);
    } else {
      if (fromRv < this.compactedRv) throw expired(fromRv, this.compactedRv);
      for (const event of this.history) {
        if (event.resourceVersion > fromRv && event.resource === resource) deliver(filter, event, sink);
      }
    }
    const subscription: Subscription = { resource, filter, sink };
    this.subscriptions.add(subscription);
    return () => this.subscriptions.delete(subscription);
  }

  /** The shared tail of update and patch: merge with server-owned fields, then store (or not). */
  private write(resource: ResourceType, current: KubeObject, desired: KubeObject, subresource: Subresource, dryRun: boolean): KubeObject {
    let next: KubeObject;
    if (subresource === 'status') {
      // Only status changes through /status; everything else stays as stored.
      next = cloneJson(current);
      if (desired.status === undefined) delete next.status;
      else next.status = cloneJson(desired.status);
    } else {
      next = cloneJson(desired);
      if (resource.statusSubresource === true) {
        if (current.status === undefined) delete next.status;
        else next.status = cloneJson(current.status);
      }
    }
    const old = current.metadata!;
    const meta: ObjectMeta = (next.metadata ??= {});
    meta.name = old.name;
    if (resource.namespaced) meta.namespace = old.namespace;
    else delete meta.namespace;
    meta.uid = old.uid;
    meta.creationTimestamp = old.creationTimestamp;
    meta.resourceVersion = old.resourceVersion;
    for (const systemOwned of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) {
      if (old[systemOwned] === undefined) delete meta[systemOwned];
      else meta[systemOwned] = old[systemOwned];
    }
    if (!isDeepStrictEqual(specOf(resource, next), specOf(resource, current))) meta.generation = (old.generation ?? 0) + 1;
    next.apiVersion = apiVersionOf(resource);
    next.kind = resource.kind;
    resource.normalize?.(next);
    validateObject(resource, next);
    // The apiserver skips writes that change nothing: no new resourceVersion, no watch event.
    if (isDeepStrictEqual(next, current)) return cloneJson(current);
    if (dryRun) return next;
    if (meta.deletionTimestamp !== undefined && (meta.finalizers ?? []).length === 0) {
      return this.commit(resource, 'DELETED', next, current);
    }
    return this.commit(resource, 'MODIFIED', next, current);
  }

  /** Stores (or drops) the object under the next resourceVersion, records it and tells the watches. */
  private commit(resource: ResourceType, type: ChangeType, obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    this.rv += 1;
    const stored = cloneJson(obj);
    stored.apiVersion = apiVersionOf(resource);
    stored.kind = resource.kind;
    stored.metadata!.resourceVersion = String(this.rv);
    const key = objectKey(stored.metadata!.namespace, stored.metadata!.name!);
    if (type === 'DELETED') this.table(resource).delete(key);
    else this.table(resource).set(key, stored);
    const event: ChangeEvent = { resourceVersion: this.rv, resource, type, object: stored, previous };
    this.history.push(event);
    for (const subscription of [...this.subscriptions]) {
      if (subscription.resource === resource) deliver(subscription.filter, event, subscription.sink);
    }
    return cloneJson(stored);
  }

  private generatedName(resource: ResourceType, namespace: string | undefined, prefix: string): string {
    for (;;) {
      let suffix = '';
      for (let i = 0; i < 5; i++) suffix += GENERATE_NAME_ALPHABET[randomInt(GENERATE_NAME_ALPHABET.length)];
      const name = `${prefix}${suffix}`;
      if (this.stored(resource, namespace, name) === undefined) return name;
    }
  }

  private table(resource: ResourceType): Map<string, KubeObject> {
    return this.objects.get(resource)!;
  }

  /** The stored object itself: never hand it out, never mutate it. */
  private stored(resource: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.table(resource).get(objectKey(resource.namespaced ? namespace : undefined, name));
  }

  private mustGet(resource: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.stored(resource, namespace, name);
    if (obj === undefined) throw notFound(resource, name);
    return obj;
  }
}

function matches(filter: ObjectFilter, obj: KubeObject): boolean {
  const meta = obj.metadata ?? {};
  if (filter.namespace !== undefined && meta.namespace !== filter.namespace) return false;
  if (filter.name !== undefined && meta.name !== filter.name) return false;
  if (filter.labels !== undefined && !filter.labels(meta.labels)) return false;
  return filter.fields === undefined || filter.fields(obj);
}

/**
 * As the apiserver's watch filtering does: an object that starts matching arrives as ADDED,
 * one that stops matching as DELETED.
 */
function deliver(filter: ObjectFilter, event: ChangeEvent, sink: WatchSink): void {
  const after = matches(filter, event.object);
  if (event.type !== 'MODIFIED') {
    if (after) sink(event.type, cloneJson(event.object));
    return;
  }
  const before = event.previous !== undefined && matches(filter, event.previous);
  if (before && after) sink('MODIFIED', cloneJson(event.object));
  else if (after) sink('ADDED', cloneJson(event.object));
  else if (before) sink('DELETED', cloneJson(event.object));
}

/** The body of a create/update: an object of this resource's apiVersion and kind. */
function checkBody(resource: ResourceType, body: unknown): KubeObject {
  if (!isPlainObject(body)) throw new ApiError(400, 'the request body must be a JSON object');
  const obj = cloneJson(body) as KubeObject;
  const apiVersion = apiVersionOf(resource);
  if (obj.apiVersion !== undefined && obj.apiVersion !== '' && obj.apiVersion !== apiVersion) {
    throw new ApiError(400, `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersion})`);
  }
  if (obj.kind !== undefined && obj.kind !== '' && obj.kind !== resource.kind) {
    throw new ApiError(400, `the kind in the data (${obj.kind}) does not match the expected kind (${resource.kind})`);
  }
  if (obj.metadata !== undefined && !isPlainObject(obj.metadata)) throw new ApiError(400, 'metadata must be an object');
  const undecodable = resource.decode?.(obj);
  if (undecodable !== undefined) throw decodeError(resource, undecodable);
  obj.apiVersion = apiVersion;
  obj.kind = resource.kind;
  return obj;
}

function checkIdentity(resource: ResourceType, namespace: string | undefined, name: string, obj: KubeObject): void {
  const meta = obj.metadata ?? {};
  if (meta.name !== name) {
    throw new ApiError(400, `the name of the object (${meta.name ?? ''}) does not match the name on the URL (${name})`);
  }
  if (resource.namespaced && meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
    throw new ApiError(400, 'the namespace of the provided object does not match the namespace sent on the request');
  }
}

function checkUid(resource: ResourceType, current: KubeObject, desired: KubeObject): void {
  const uid = desired.metadata?.uid;
  if (uid !== undefined && uid !== '' && uid !== current.metadata!.uid) {
    throw conflict(resource, current.metadata!.name!, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${current.metadata!.uid}`);
  }
}
