package dev.cryo.hooks;

import java.util.Locale;

/** What happened to the checkpoint, as seen by post-restore hooks. */
public enum Outcome {
    /** The checkpoint was taken and this is the original process carrying on. */
    RESUMED,
    /** This process is a copy started from the checkpoint (perhaps in another pod or node). */
    RESTORED,
    /** No checkpoint was taken: a hook failed, the agent gave up, or the dump failed. */
    ABORTED,
    /**
     * The checkpoint was taken for a migration and a copy carries on from it elsewhere: this
     * process, the original, must stay quiet until it is stopped (SIGTERM). Keep listeners
     * closed, take no new requests or jobs, and finish nothing with side effects (no writes, no
     * messages sent): the copy redoes whatever came after the checkpoint. An outcome this client
     * does not know is reported as {@code SUPERSEDED} too, the safe reading.
     */
    SUPERSEDED;

    /** The protocol's spelling: {@code resumed}, {@code restored}, {@code aborted} or {@code superseded}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
