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
 */
public final class HookContext {
    private final String checkpointId;
    private final String reason;
    private final Instant deadline;
    private final long restoreCount;
    private final Outcome outcome;

    HookContext(String checkpointId, String reason, Instant deadline, long restoreCount, Outcome outcome) {
        this.checkpointId = checkpointId;
        this.reason = reason;
        this.deadline = deadline;
        this.restoreCount = restoreCount;
        this.outcome = outcome;
    }

    /** {@code <namespace>/<Checkpoint name>}, or {@code null} if unknown. */
    public String checkpointId() {
        return checkpointId;
    }

    /** The free-text reason of the checkpoint (possibly empty), or {@code null} if unknown. */
    public String reason() {
        return reason;
    }

    /**
     * When the whole preparation must be done, on this JVM's clock (computed from the
     * {@code prepare}'s {@code timeoutMs} when it was received), or {@code null} if unknown.
     */
    public Instant deadline() {
        return deadline;
    }

    /** How many restores lie behind this process: 0 for the original, 2 for a copy of a copy. */
    public long restoreCount() {
        return restoreCount;
    }

    /** The outcome for post-restore hooks; {@code null} for pre-checkpoint hooks. */
    public Outcome outcome() {
        return outcome;
    }

    HookContext withOutcome(Outcome newOutcome, long newRestoreCount) {
        return new HookContext(checkpointId, reason, deadline, newRestoreCount, newOutcome);
    }

    @Override
    public String toString() {
        return "HookContext[checkpointId=" + checkpointId + ", reason=" + reason + ", deadline=" + deadline
                + ", restoreCount=" + restoreCount + ", outcome=" + outcome + "]";
    }
}
