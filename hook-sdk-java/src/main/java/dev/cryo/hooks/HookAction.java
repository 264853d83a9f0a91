package dev.cryo.hooks;

/** The body of a pre-checkpoint or post-restore hook. It may throw anything. */
@FunctionalInterface
public interface HookAction {
    /**
     * Runs the hook. Runs on a worker thread of its own; when the hook's timeout passes, the thread
     * is interrupted and abandoned, so long waits should honour interruption.
     */
    void run(HookContext context) throws Exception;
}
