/**
 * The shape of the Pod in an AdmissionReview, checked before any mutation logic reads it: every
 * field the mutator and its helpers read (pod-mutator.ts, restore-mutation.ts,
 * restore-node-affinity.ts, hook-socket-mutation.ts, hook-socket-guard.ts, mount-check.ts,
 * pod-patch.ts) has the type they assume, and the pod as a whole is shallow enough for the
 * recursive passes over it (the copy of the affinity, the diff, isDeepStrictEqual,
 * JSON.stringify). A pod that fails is refused with 422 `malformed-pod` and a message naming the
 * JSON path: `spec.containers[2].volumeMounts: expected an array, got null`.
 *
 * Where the line is. The envelope (admission-review.ts) comes from the kube-apiserver alone: one
 * that is not a well-formed AdmissionReview was not sent by it, has no uid to answer to, and gets
 * HTTP 400. The pod inside comes from whoever created it: the apiserver decodes it into its typed
 * Pod before calling webhooks, so the types are right, but it validates the pod only after
 * mutating admission, so a pod the apiserver is about to refuse (no containers, which the typed
 * Pod encodes as `containers: null`; an invalid container name; annotations over 256 KiB) reaches
 * the webhook. Everything wrong inside `request.object` is therefore answered in the review, as a
 * refusal the user sees, whether the apiserver could have sent it (those just named) or not (a
 * string where an array belongs, nesting deeper than a Pod's schema goes, a `__proto__` key the
 * typed decoding would have dropped). Either way it is an answer, never a crash or a 500.
 *
 * The rules: a checked field is absent or of its type; `null` is not absent (the apiserver omits
 * empty optional fields, and sends null only for required ones, whose validation then refuses
 * the pod anyway). Every pod the webhook is sent is checked alike, annotated or not: the hook
 * socket guard reads every pod's volumes and containers. Besides types, a few bounds (the
 * constants below) keep the work for one review small; the body as a whole is bounded before
 * it is parsed (server.ts: its size, and its nesting).
 */
import { annotations } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';

/**
 * Deepest nesting accepted in a pod (the pod object itself is level 0). A Pod's schema nests
 * about 12 levels (spec.affinity.podAntiAffinity...matchExpressions[j].values[k]), its
 * managedFields mirror that plus 4; 64 leaves room for fields to come while keeping every
 * recursive pass shallow (JSON.stringify, the first to give out, takes some 5,000).
 */
export const MAX_POD_DEPTH = 64;
/** The apiserver's own limit on a pod's annotations (keys and values, in bytes). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** PATH_MAX on Linux: no longer mount path can be mounted. */
export const MAX_PATH_LENGTH = 4096;
/**
 * Most slashes in a row in a mount path. The mount check trims trailing slashes with a regex
 * whose time grows with the square of such a run (mount-check.ts, normalize): 4,096 slashes
 * and a letter cost about 15 ms, a body full of such paths seconds. No real path has more
 * than two, and the kernel reads any run as one.
 */
export const MAX_SLASH_RUN = 8;

/**
 * Most containers in one list. The API sets no number, but the work and the patch grow with it:
 * a hook-enabled pod of 20,000 one-line containers (2.3 MB) takes a second to answer with a
 * 19 MB patch, blocking every other admission meanwhile. No real pod comes near 1,000.
 */
export const MAX_CONTAINERS = 1000;

/** Kubernetes label names (DNS-1123 label): container and namespace names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
const REQUIREMENT_LISTS = ['matchExpressions', 'matchFields'] as const;

type Json = Record<string, unknown>;

/** A field of the wrong shape: where (pod-relative JSON path) and what is wrong. */
class ShapeError extends Error {
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
  }
}

/** Why the pod cannot be read as a Pod, or undefined when every field the webhook reads has its shape. */
export function podShapeProblem(pod: Json): AdmissionDenial | undefined {
  try {
    checkPod(pod);
    return undefined;
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    return new AdmissionDenial(422, 'malformed-pod', err.message);
  }
}

function checkPod(pod: Json): void {
  // First the bounded walk, so nothing after it (here or in the mutator) meets nesting deeper
  // than MAX_POD_DEPTH, then what is read, field by field.
  checkNesting(pod);
  const metadata = requiredObject(pod.metadata, 'metadata');
  for (const field of ['name', 'namespace', 'generateName'] as const) optionalString(metadata[field], `metadata.${field}`);
  const namespace = metadata.namespace;
  if (typeof namespace === 'string' && namespace !== '' && (namespace.length > 63 || !DNS_LABEL.test(namespace))) {
    throw new ShapeError('metadata.namespace', `${quote(namespace)} is not a namespace name`);
  }
  optionalStringMap(metadata.labels, 'metadata.labels');
  const podAnnotations = optionalStringMap(metadata.annotations, 'metadata.annotations');
  if (podAnnotations !== undefined) checkAnnotations(podAnnotations);

  const spec = requiredObject(pod.spec, 'spec');
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    const got = Array.isArray(containers) ? 'an empty one' : kindOf(containers);
    throw new ShapeError('spec.containers', `expected a non-empty array, got ${got}`);
  }
  for (const list of CONTAINER_LISTS) {
    const items = optionalArray(spec[list], `spec.${list}`);
    if (items !== undefined && items.length > MAX_CONTAINERS) {
      throw new ShapeError(`spec.${list}`, `${items.length} containers, more than the ${MAX_CONTAINERS} the webhook takes in one list`);
    }
    items?.forEach((item, i) => checkContainer(item, `spec.${list}[${i}]`));
  }
  optionalArray(spec.volumes, 'spec.volumes')?.forEach((item, i) => {
    const path = `spec.volumes[${i}]`;
    const volume = requiredObject(item, path);
    requiredString(volume.name, `${path}.name`);
    optionalString(optionalObject(volume.hostPath, `${path}.hostPath`)?.path, `${path}.hostPath.path`);
    optionalString(optionalObject(volume.csi, `${path}.csi`)?.driver, `${path}.csi.driver`);
  });
  optionalArray(spec.imagePullSecrets, 'spec.imagePullSecrets')?.forEach((item, i) => {
    optionalString(requiredObject(item, `spec.imagePullSecrets[${i}]`).name, `spec.imagePullSecrets[${i}].name`);
  });
  checkAffinity(spec.affinity);
}

function checkContainer(value: unknown, path: string): void {
  const container = requiredObject(value, path);
  const name = requiredString(container.name, `${path}.name`);
  if (name.length > 63 || !DNS_LABEL.test(name)) {
    // The webhook records restored containers by name, comma-separated (cryo.dev/restored-containers).
    throw new ShapeError(`${path}.name`, `${quote(name)} is not a container name (at most 63 lowercase letters, digits and '-')`);
  }
  optionalString(container.image, `${path}.image`);
  if (container.terminationMessagePath !== undefined) checkPath(container.terminationMessagePath, `${path}.terminationMessagePath`);
  optionalArray(container.volumeMounts, `${path}.volumeMounts`)?.forEach((item, i) => {
    const mountPath = `${path}.volumeMounts[${i}]`;
    const mount = requiredObject(item, mountPath);
    requiredString(mount.name, `${mountPath}.name`);
    checkPath(mount.mountPath, `${mountPath}.mountPath`);
    optionalString(mount.subPath, `${mountPath}.subPath`);
    optionalString(mount.subPathExpr, `${mountPath}.subPathExpr`);
  });
  optionalArray(container.env, `${path}.env`)?.forEach((item, i) => {
    const envPath = `${path}.env[${i}]`;
    const env = requiredObject(item, envPath);
    requiredString(env.name, `${envPath}.name`);
    optionalString(env.value, `${envPath}.value`);
    const valueFrom = optionalObject(env.valueFrom, `${envPath}.valueFrom`);
    optionalString(optionalObject(valueFrom?.fieldRef, `${envPath}.valueFrom.fieldRef`)?.fieldPath, `${envPath}.valueFrom.fieldRef.fieldPath`);
  });
}

function checkPath(value: unknown, path: string): void {
  const text = requiredString(value, path);
  if (text.length > MAX_PATH_LENGTH) throw new ShapeError(path, `longer than ${MAX_PATH_LENGTH} characters (PATH_MAX)`);
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    run = text.charCodeAt(i) === 0x2f ? run + 1 : 0;
    if (run > MAX_SLASH_RUN) throw new ShapeError(path, `has more than ${MAX_SLASH_RUN} slashes in a row`);
  }
}

/** What restore-node-affinity.ts reads and writes: the required node affinity's terms. */
function checkAffinity(value: unknown): void {
  const affinity = optionalObject(value, 'spec.affinity');
  const nodeAffinity = optionalObject(affinity?.nodeAffinity, 'spec.affinity.nodeAffinity');
  const requiredPath = 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution';
  const required = optionalObject(nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, requiredPath);
  optionalArray(required?.nodeSelectorTerms, `${requiredPath}.nodeSelectorTerms`)?.forEach((item, i) => {
    const termPath = `${requiredPath}.nodeSelectorTerms[${i}]`;
    const term = requiredObject(item, termPath);
    for (const list of REQUIREMENT_LISTS) {
      optionalArray(term[list], `${termPath}.${list}`)?.forEach((entry, j) => {
        const requirementPath = `${termPath}.${list}[${j}]`;
        const requirement = requiredObject(entry, requirementPath);
        requiredString(requirement.key, `${requirementPath}.key`);
        requiredString(requirement.operator, `${requirementPath}.operator`);
        optionalArray(requirement.values, `${requirementPath}.values`)?.forEach((v, k) => requiredString(v, `${requirementPath}.values[${k}]`));
      });
    }
  });
}

function checkAnnotations(podAnnotations: Record<string, string>): void {
  let bytes = 0;
  for (const [key, value] of Object.entries(podAnnotations)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  if (bytes > MAX_ANNOTATIONS_BYTES) {
    throw new ShapeError('metadata.annotations', `${bytes} bytes, more than the ${MAX_ANNOTATIONS_BYTES} the apiserver allows`);
  }
  // The webhook's own record, read back on reinvocation and written out again with
  // JSON.stringify. Text that is not a JSON object is started over; an object holding anything
  // but strings (an array nested 5,000 deep overflows JSON.stringify) is not the webhook's.
  const record = podAnnotations[annotations.ORIGINAL_IMAGES];
  if (record === undefined) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(record);
  } catch {
    return;
  }
  if (!isObject(parsed)) return;
  for (const key of Object.keys(parsed)) {
    if (typeof parsed[key] !== 'string') {
      throw new ShapeError(
        `metadata.annotations[${quote(annotations.ORIGINAL_IMAGES)}]`,
        `the webhook's record maps container names to image strings, but ${quote(key)} maps to ${kindOf(parsed[key])}; remove the annotation`,
      );
    }
  }
}

interface Frame {
  value: object;
  depth: number;
  parent: Frame | undefined;
  key: string | number;
}

/**
 * Walks the whole pod without recursion (an explicit stack), refusing nesting deeper than
 * MAX_POD_DEPTH and `__proto__` keys: JSON.parse makes those own properties, but a copy by
 * assignment (cloneJson of the affinity) turns them into the copy's prototype, so fields read
 * from the copy would differ from the ones the diff sees. A typed Pod has no such key.
 */
function checkNesting(pod: Json): void {
  const stack: Frame[] = [{ value: pod, depth: 0, parent: undefined, key: '' }];
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const { value, depth } = frame;
    if (depth > MAX_POD_DEPTH) throw new ShapeError(pathOf(frame), `nested deeper than ${MAX_POD_DEPTH} levels`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const child: unknown = value[i];
        if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1, parent: frame, key: i });
      }
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') throw new ShapeError(pathOf({ value, depth: depth + 1, parent: frame, key }), 'a __proto__ key has no place in a Pod');
      const child: unknown = (value as Json)[key];
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1, parent: frame, key });
    }
  }
}

function pathOf(frame: Frame): string {
  const parts: string[] = [];
  for (let f: Frame | undefined = frame; f?.parent !== undefined; f = f.parent) {
    parts.push(typeof f.key === 'number' ? `[${f.key}]` : IDENTIFIER.test(f.key) ? `.${f.key}` : `[${quote(f.key)}]`);
  }
  return parts.reverse().join('').replace(/^\./, '');
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** A user's string in a message: JSON-quoted, cut to 64 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

function requiredObject(value: unknown, path: string): Json {
  if (!isObject(value)) throw new ShapeError(path, `expected an object, got ${kindOf(value)}`);
  return value;
}

function optionalObject(value: unknown, path: string): Json | undefined {
  return value === undefined ? undefined : requiredObject(value, path);
}

function optionalArray(value: unknown, path: string): unknown[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new ShapeError(path, `expected an array, got ${kindOf(value)}`);
  return value as unknown[];
}

function requiredString(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new ShapeError(path, `expected a string, got ${kindOf(value)}`);
  return value;
}

function optionalString(value: unknown, path: string): void {
  if (value !== undefined) requiredString(value, path);
}

/** A map of strings (annotations, labels): an object whose every value is a string. */
function optionalStringMap(value: unknown, path: string): Record<string, string> | undefined {
  const map = optionalObject(value, path);
  if (map === undefined) return undefined;
  for (const key of Object.keys(map)) {
    if (typeof map[key] !== 'string') {
      throw new ShapeError(`${path}[${quote(key)}]`, `expected a string, got ${kindOf(map[key])}`);
    }
  }
  return map as Record<string, string>;
}
