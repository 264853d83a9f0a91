package dev.cryo.hooks;

/** A registered hook. {@link #close()} unregisters it; calling it again does nothing. */
public interface Registration extends AutoCloseable {
    /**
     * Unregisters the hook. During a checkpoint this takes effect when the checkpoint is over:
     * the hook still runs after restore if it ran before the checkpoint.
     */
    @Override
    void close();
}
