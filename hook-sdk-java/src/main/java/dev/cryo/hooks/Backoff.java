package dev.cryo.hooks;

import java.util.concurrent.ThreadLocalRandom;

/** Reconnect delays (§2.6). */
final class Backoff {
    static final long PENDING_MIN_MS = 20;
    static final long PENDING_MAX_MS = 50;
    static final long INITIAL_MS = 100;
    static final long MAX_MS = 5_000;
    /** After {@code unsupported-version}: slowly, the agent may be upgraded. */
    static final long SLOW_MS = 30_000;

    private int failures;

    /** The next delay: 20–50 ms while a checkpoint is pending, else exponential with jitter. */
    long next(boolean checkpointPending, boolean slow) {
        ThreadLocalRandom random = ThreadLocalRandom.current();
        if (checkpointPending) {
            return random.nextLong(PENDING_MIN_MS, PENDING_MAX_MS + 1);
        }
        if (slow) {
            return SLOW_MS + random.nextLong(SLOW_MS / 4 + 1);
        }
        long base = INITIAL_MS << Math.min(failures, 16);
        failures++;
        if (base >= MAX_MS) {
            return random.nextLong(MAX_MS * 4 / 5, MAX_MS + 1); // 4–5 s once at the cap
        }
        return Math.min(MAX_MS, base + random.nextLong(base / 4 + 1)); // 100–125, 200–250, … ms
    }

    /** After the agent answered a hello: start again from 100 ms. */
    void reset() {
        failures = 0;
    }
}
