/**
 * The apiserver's error answers: a `Status` body whose message, reason and details match what
 * the real kube-apiserver sends, so code that parses `err.body` is tested against real shapes.
 */

/** The Status shape, as `kubectl get --raw` would show it. */
export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** The resource plural for most errors, the Kind for Invalid: the real apiserver's quirk. */
  kind?: string;
  uid?: string;
  causes?: { reason?: string; message: string; field?: string }[];
  retryAfterSeconds?: number;
}

/** The minimum the error constructors need from a resource (avoids an import cycle with the table). */
interface ResourceNames {
  group: string;
  plural: string;
  kind: string;
}

const REASON_BY_CODE: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function reasonForCode(code: number): string {
  return REASON_BY_CODE[code] ?? 'Unknown';
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;

  constructor(code: number, message: string, options: { reason?: string; details?: StatusDetails } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.reason = options.reason ?? reasonForCode(code);
    this.details = options.details;
  }

  toStatus(): StatusBody {
    return failureStatus(this.code, this.message, this.reason, this.details);
  }
}

export function failureStatus(code: number, message: string, reason = reasonForCode(code), details?: StatusDetails): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** `secrets` for core resources, `checkpoints.cryo.dev` for the rest: how messages name a resource. */
export function qualifiedResource(resource: ResourceNames): string {
  return resource.group === '' ? resource.plural : `${resource.plural}.${resource.group}`;
}

function objectDetails(resource: ResourceNames, name: string, kind = resource.plural): StatusDetails {
  return { name, ...(resource.group === '' ? {} : { group: resource.group }), kind };
}

export function notFound(resource: ResourceNames, name: string): ApiError {
  return new ApiError(404, `${qualifiedResource(resource)} "${name}" not found`, { details: objectDetails(resource, name) });
}

export function unknownPath(): ApiError {
  return new ApiError(404, 'the server could not find the requested resource', { details: {} });
}

export function alreadyExists(resource: ResourceNames, name: string): ApiError {
  return new ApiError(409, `${qualifiedResource(resource)} "${name}" already exists`, {
    reason: 'AlreadyExists',
    details: objectDetails(resource, name),
  });
}

export function conflict(resource: ResourceNames, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError {
  return new ApiError(409, `Operation cannot be fulfilled on ${qualifiedResource(resource)} "${name}": ${why}`, {
    details: objectDetails(resource, name),
  });
}

export function invalid(resource: ResourceNames, name: string, field: string, detail: string): ApiError {
  const message = `${field}: ${detail}`;
  return new ApiError(422, `${resource.kind} "${name}" is invalid: ${message}`, {
    details: { ...objectDetails(resource, name, resource.kind), causes: [{ reason: 'FieldValueInvalid', message, field }] },
  });
}

/** A body the apiserver could not decode into the resource's Go type, as transformDecodeError words it. */
export function decodeError(resource: ResourceNames & { version: string }, cause: string): ApiError {
  return new ApiError(400, `${resource.kind} in version ${JSON.stringify(resource.version)} cannot be handled as a ${resource.kind}: ${cause}`);
}

export function methodNotAllowed(): ApiError {
  return new ApiError(405, 'the server does not allow this method on the requested resource', { details: {} });
}

export function expired(requested: number, oldest: number): ApiError {
  return new ApiError(410, `too old resource version: ${requested} (${oldest})`);
}

export const UNAUTHORIZED = new ApiError(401, 'Unauthorized');

/** What a successful DELETE answers for resources that do not return the object. */
export function deletedStatus(resource: ResourceNames, name: string, uid: string | undefined): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...objectDetails(resource, name), ...(uid === undefined ? {} : { uid }) },
  };
}
