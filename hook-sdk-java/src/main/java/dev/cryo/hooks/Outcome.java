package dev.cryo.hooks;

import java.util.Locale;

/** What happened to the checkpoint, as seen by post-restore hooks. */
public enum Outcome {
    /** The checkpoint was taken and this is the original process carrying on. */
    RESUMED,
    /** This process is a copy started from the checkpoint (perhaps in another pod or node). */
    RESTORED,
    /** No checkpoint was taken: a hook failed, the agent gave up, or the dump failed. */
    ABORTED;

    /** The protocol's spelling: {@code resumed}, {@code restored} or {@code aborted}. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
