package dev.cryo.hooks;

import java.time.Instant;

/**
 * What a hook learns about the checkpoint it runs for. Immutable.
 *
 * <p>For pre-checkpoint hooks {@link #outcome()} is {@code null}. For post-restore hooks it tells
 * whether this process is the original carrying on, a restored copy, the original superseded by a
 * copy that carries on elsewhere (a migration: stay quiet until stopped), or the checkpoint was
 * aborted; the other fields then describe the checkpoint as far as this process knows it (a copy
 * restored from a checkpoint this process did not take part in has a {@code null} reason and
 * deadline, and perhaps a {@code null} checkpoint id).
 *
 * <p>The client makes these; the constructor is public (as a record's must be) so that an
 * application's tests can call its own hook actions with a context of their choosing.
 *
 * @param checkpointId {@code <namespace>/<Checkpoint name>}, or {@code null} if unknown
 * @param reason the free-text reason of the checkpoint (possibly empty), or {@code null} if unknown
 * @param deadline when the whole preparation must be done, on this JVM's clock (computed from the
 *     {@code prepare}'s {@code timeoutMs} when it was received), or {@code null} if unknown
 * @param restoreCount how many restores lie behind this process: 0 for the original, 2 for a copy
 *     of a copy
 * @param outcome the outcome for post-restore hooks; {@code null} for pre-checkpoint hooks
 */
public record HookContext(String checkpointId, String reason, Instant deadline, long restoreCount, Outcome outcome) {
    HookContext withOutcome(Outcome newOutcome, long newRestoreCount) {
        return new HookContext(checkpointId, reason, deadline, newRestoreCount, newOutcome);
    }
}
