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

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) {
    throw new BadAdmissionReview('not-an-object', 'the body must be a JSON object: an AdmissionReview');
  }
  if (body.kind !== 'AdmissionReview') {
    throw new BadAdmissionReview('wrong-kind', `kind must be "AdmissionReview", got ${JSON.stringify(body.kind ?? null)}`);
  }
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw new BadAdmissionReview(
      'wrong-api-version',
      `apiVersion must be "${ADMISSION_API_VERSION}", got ${JSON.stringify(body.apiVersion ?? null)}; ` +
        'set admissionReviewVersions: [v1] in the MutatingWebhookConfiguration',
    );
  }
  const request = body.request;
  if (!isObject(request)) {
    throw new BadAdmissionReview('missing-request', 'the AdmissionReview has no "request" object');
  }
  if (typeof request.uid !== 'string' || request.uid === '') {
    throw new BadAdmissionReview('missing-uid', 'request.uid must be a non-empty string');
  }
  if (!OPERATIONS.includes(request.operation as AdmissionOperation)) {
    throw new BadAdmissionReview(
      'unknown-operation',
      `request.operation must be one of ${OPERATIONS.join(', ')}, got ${JSON.stringify(request.operation ?? null)}`,
    );
  }
  const kind = request.kind;
  if (!isObject(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    throw new BadAdmissionReview('missing-kind', 'request.kind must be an object with group, version and kind');
  }
  if (request.operation === 'CREATE' && !isObject(request.object)) {
    throw new BadAdmissionReview('missing-object', 'request.object must be the object being created');
  }
  for (const field of ['name', 'namespace'] as const) {
    if (request[field] !== undefined && typeof request[field] !== 'string') {
      throw new BadAdmissionReview('bad-field', `request.${field} must be a string`);
    }
  }
  return request as unknown as AdmissionRequest;
}

export function reviewResponse(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
