package dev.cryo.hooks;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;

/**
 * Runs hooks one at a time, each on a worker thread of its own so that a hook that hangs can be
 * given up on after its timeout (the thread is interrupted and left behind). Every hook runs, even
 * after another failed; the failures are returned.
 */
final class HookRunner {
    /** Phase of a run. */
    enum Phase {
        BEFORE("before checkpoint"), AFTER("after restore");

        final String label;

        Phase(String label) {
            this.label = label;
        }
    }

    /** No deadline: only the hooks' own timeouts apply. */
    static final long NO_DEADLINE = Long.MAX_VALUE;

    private final Duration defaultTimeout;

    HookRunner(Duration defaultTimeout) {
        this.defaultTimeout = defaultTimeout;
    }

    /**
     * Runs the hooks' actions for {@code phase} in the given order. {@code deadlineNanos} (on the
     * {@link System#nanoTime()} clock) caps every hook's timeout; a hook whose turn comes after it
     * is not started.
     */
    List<HookError> run(List<HookRegistry.Entry> hooks, Phase phase, HookContext context, long deadlineNanos) {
        List<HookError> errors = new ArrayList<>();
        for (HookRegistry.Entry entry : hooks) {
            HookError error = runOne(entry.hook, phase, context, deadlineNanos);
            if (error != null) {
                errors.add(error);
                Log.LOGGER.warning("hook " + error + " (" + phase.label + ")");
            }
        }
        return errors;
    }

    private HookError runOne(CheckpointHook hook, Phase phase, HookContext context, long deadlineNanos) {
        HookAction action = phase == Phase.BEFORE ? hook.beforeCheckpoint() : hook.afterRestore();
        long timeoutNanos = (hook.timeout() != null ? hook.timeout() : defaultTimeout).toNanos();
        boolean cappedByDeadline = false;
        if (deadlineNanos != NO_DEADLINE) {
            long remaining = deadlineNanos - System.nanoTime();
            if (remaining <= 0) {
                return new HookError(hook.name(), "not run: the prepare deadline had passed", true);
            }
            if (remaining < timeoutNanos) {
                timeoutNanos = remaining;
                cappedByDeadline = true;
            }
        }

        Throwable[] failure = new Throwable[1];
        Thread worker = Threads.daemon("cryo-hook-" + (hook.name().isEmpty() ? "unnamed" : hook.name()), () -> {
            try {
                action.run(context);
            } catch (Throwable t) {
                failure[0] = t;
            }
        });
        worker.start();
        try {
            TimeUnit.NANOSECONDS.timedJoin(worker, timeoutNanos);
        } catch (InterruptedException e) {
            worker.interrupt();
            Thread.currentThread().interrupt();
            return new HookError(hook.name(), "interrupted while waiting for the hook", false);
        }
        if (worker.isAlive()) {
            worker.interrupt();
            long ms = Math.round(timeoutNanos / 1e6);
            return new HookError(hook.name(),
                    "timed out after " + ms + " ms" + (cappedByDeadline ? " (the prepare deadline)" : ""), true);
        }
        // join() establishes happens-before with everything the worker did, failure[0] included.
        Throwable t = failure[0];
        if (t == null) {
            return null;
        }
        Log.LOGGER.log(Level.FINE, "hook " + hook.name() + " threw", t);
        String message = t.getMessage();
        return new HookError(hook.name(), message != null && !message.isEmpty() ? message : t.toString(), false);
    }
}
