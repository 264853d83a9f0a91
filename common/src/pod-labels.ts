/**
 * Every Pod label Cryo writes (README.md#annotations lists them with the annotations); nothing
 * else in the code spells these strings.
 */
import { ANNOTATION_PREFIX } from './annotations.ts';

/**
 * Set on pods re-created whole from a Checkpoint (kubectl cryo restore, Migrations): the
 * Checkpoint's name, so `-l cryo.dev/restored-from=<checkpoint>` selects every copy. A label
 * value holds at most 63 characters: longer names are cut (restoredFromLabelValue); the full
 * name is in the pod's cryo.dev/restore-from annotation.
 */
export const RESTORED_FROM = `${ANNOTATION_PREFIX}restored-from`;

const MAX_LABEL_VALUE = 63;

/** The RESTORED_FROM value for a Checkpoint name: the name, cut to 63 characters ending alphanumeric. */
export function restoredFromLabelValue(checkpointName: string): string {
  if (checkpointName.length <= MAX_LABEL_VALUE) return checkpointName;
  return checkpointName.slice(0, MAX_LABEL_VALUE).replace(/[^A-Za-z0-9]+$/, '');
}
