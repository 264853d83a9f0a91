/**
 * The AdmissionReview v1 envelope: parsing what the kube-apiserver sends (and refusing, with a
 * message that says what to fix, anything that is not a well-formed review) and building answers.
 */

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type AdmissionOperation = (typeof OPERATIONS)[number];

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: AdmissionOperation;
  userInfo?: { username?: string };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of an RFC 6902 JSON Patch array. */
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** A client's mistake: answered with HTTP 400 and this message, never a crash. */
export class BadAdmissionReview extends Error {
  override name = 'BadAdmissionReview';
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Kubernetes namespace names (DNS-1123 label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A received value in a message: a string JSON-quoted and cut to 64 characters, anything else
 * by its type only (never serialized: it may be nested deeper than JSON.stringify can go).
 */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`;
}

/**
 * Checks the envelope only: what the kube-apiserver alone writes. A body failing here was not
 * sent by it, so it gets HTTP 400 naming the field (without a valid uid there is no review to
 * answer). The pod inside `request.object` is checked later, in pod-shape.ts.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) {
    throw new BadAdmissionReview('not-an-object', `the body must be a JSON object: an AdmissionReview, got ${describeValue(body)}`);
  }
  if (body.kind !== 'AdmissionReview') {
    throw new BadAdmissionReview('wrong-kind', `kind must be "AdmissionReview", got ${describeValue(body.kind ?? null)}`);
  }
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new BadAdmissionReview(
      'wrong-api-version',
      `apiVersion must be "${ADMISSION_API_VERSION}", got ${describeValue(body.apiVersion ?? null)}; ` +
        'set admissionReviewVersions: [v1] in the MutatingWebhookConfiguration',
    );
  }
  const request = body.request;
  if (!isObject(request)) {
    throw new BadAdmissionReview('missing-request', `the AdmissionReview has no "request" object (request: ${describeValue(request)})`);
  }
  if (typeof request.uid !== 'string' || request.uid === '') {
    throw new BadAdmissionReview('missing-uid', `request.uid must be a non-empty string, got ${describeValue(request.uid)}`);
  }
  if (!OPERATIONS.includes(request.operation as AdmissionOperation)) {
    throw new BadAdmissionReview(
      'unknown-operation',
      `request.operation must be one of ${OPERATIONS.join(', ')}, got ${describeValue(request.operation ?? null)}`,
    );
  }
  const kind = request.kind;
  if (!isObject(kind)) {
    throw new BadAdmissionReview('missing-kind', `request.kind must be an object with group, version and kind, got ${describeValue(kind)}`);
  }
  for (const field of ['group', 'version', 'kind'] as const) {
    const value = kind[field];
    if (typeof value !== 'string' && !(field === 'group' && value === undefined)) {
      throw new BadAdmissionReview('missing-kind', `request.kind.${field} must be a string, got ${describeValue(value)}`);
    }
  }
  if (request.operation === 'CREATE' && !isObject(request.object)) {
    throw new BadAdmissionReview('missing-object', `request.object must be the object being created, got ${describeValue(request.object)}`);
  }
  for (const field of ['name', 'namespace'] as const) {
    if (request[field] !== undefined && typeof request[field] !== 'string') {
      throw new BadAdmissionReview('bad-field', `request.${field} must be a string, got ${describeValue(request[field])}`);
    }
  }
  const namespace = request.namespace as string | undefined;
  if (namespace !== undefined && namespace !== '' && (namespace.length > 63 || !NAMESPACE.test(namespace))) {
    throw new BadAdmissionReview('bad-field', `request.namespace must be a namespace name, got ${describeValue(namespace)}`);
  }
  if (request.dryRun !== undefined && typeof request.dryRun !== 'boolean') {
    throw new BadAdmissionReview('bad-field', `request.dryRun must be a boolean, got ${describeValue(request.dryRun)}`);
  }
  return request as unknown as AdmissionRequest;
}

export function reviewResponse(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
