/**
 * The PATCH body formats. Strategic merge patch is served as a plain JSON merge patch: lists
 * are replaced whole instead of merged by key (e.g. containers by name) and `$patch`/`$retainKeys`
 * directives are not understood. That is enough for the metadata and status patches Cryo sends;
 * a test that needs list merging must use a JSON patch.
 */
import { applyPatch, type Operation } from 'rfc6902';
import { ApiError } from './kube-apiserver-status.ts';

export const PATCH_CONTENT_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return cloneJson(patch);
  const result: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** RFC 6902, all or nothing: any failed operation (a `test` included) leaves `target` untouched. */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new ApiError(400, 'json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  const doc = cloneJson(target);
  let results: ReturnType<typeof applyPatch>;
  try {
    results = applyPatch(doc, operations as Operation[]);
  } catch (err) {
    throw new ApiError(422, `the server rejected our request due to an error in our request: ${String(err)}`);
  }
  const failure = results.find((r) => r !== null);
  if (failure !== undefined && failure !== null) {
    throw new ApiError(422, `the server rejected our request due to an error in our request: ${failure.name}: ${failure.message}`);
  }
  return doc;
}

/** Applies `patch` of the given Content-Type to `target`; throws the apiserver's error otherwise. */
export function applyPatchOfType(contentType: string, target: unknown, patch: unknown): unknown {
  switch (contentType) {
    case 'application/json-patch+json':
      return jsonPatch(target, patch);
    case 'application/merge-patch+json':
    case 'application/strategic-merge-patch+json':
      if (!isPlainObject(patch)) throw new ApiError(400, 'json: cannot unmarshal array into Go value of type map[string]interface {}');
      return mergePatch(target, patch);
    case 'application/apply-patch+yaml':
      throw new ApiError(415, 'server-side apply (application/apply-patch+yaml) is not implemented by the fake kube-apiserver');
    default:
      throw new ApiError(415, `the body of the request was in an unknown format - accepted media types include: ${PATCH_CONTENT_TYPES.join(', ')}`);
  }
}
