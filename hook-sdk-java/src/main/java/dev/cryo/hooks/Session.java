package dev.cryo.hooks;

import java.security.SecureRandom;
import java.util.Map;

/**
 * What the process remembers across connections (§2.1): the session id, the pod UID it believes
 * it runs in, its restore count and the checkpoint it answered {@code ready} to. Because a CRIU
 * restore restores memory, a restored copy starts out with exactly the original's values.
 */
final class Session {
    /** Picked once per JVM: 128 random bits as 32 lower-case hex digits. */
    static final String SESSION_ID = newSessionId();

    private String podUid;
    private long restoreCount;
    /** The context of the prepare answered ready, while its outcome is unknown; else null. */
    private HookContext pending;
    private String hostnameAtPrepare;
    private long pendingElapsedNanos;
    private long lastTickNanos;

    Session(String podUid) {
        this.podUid = podUid == null ? "" : podUid;
    }

    private static String newSessionId() {
        byte[] bits = new byte[16];
        new SecureRandom().nextBytes(bits);
        StringBuilder hex = new StringBuilder(32);
        for (byte b : bits) {
            hex.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
        }
        return hex.toString();
    }

    synchronized String podUid() {
        return podUid;
    }

    synchronized long restoreCount() {
        return restoreCount;
    }

    synchronized String pendingCheckpoint() {
        return pending == null ? null : pending.checkpointId();
    }

    synchronized boolean hasPending() {
        return pending != null;
    }

    /** Takes in an answer of the agent ({@code welcome}, {@code resumed}, {@code restored}). */
    synchronized void update(String kind, Map<String, Object> answer) {
        Object uid = answer.get("podUid");
        if (uid instanceof String && !((String) uid).isEmpty()) {
            podUid = (String) uid;
        }
        if ("restored".equals(kind)) {
            Object count = answer.get("restoreCount");
            restoreCount = count instanceof Long && (Long) count >= 0 ? (Long) count : restoreCount + 1;
        }
    }

    /** Called just before sending {@code ready}. */
    synchronized void setPending(HookContext prepared, String hostname) {
        pending = prepared;
        hostnameAtPrepare = hostname;
        pendingElapsedNanos = 0;
        lastTickNanos = System.nanoTime();
    }

    /** Clears the pending checkpoint and returns its context, or null if none was pending. */
    synchronized HookContext takePending() {
        HookContext taken = pending;
        pending = null;
        hostnameAtPrepare = null;
        return taken;
    }

    /**
     * Called between connection attempts: counts the time spent waiting for the outcome of the
     * pending checkpoint and, once it reaches {@code limitNanos}, takes the pending checkpoint
     * (§2.6) and returns it; otherwise returns null. Each call counts at most {@code maxStepNanos},
     * so a clock that jumps across a restore (monotonic clocks differ between nodes) cannot make a
     * freshly restored copy give up before it tried to connect.
     */
    synchronized Expired takeExpired(long limitNanos, long maxStepNanos) {
        if (pending == null) {
            return null;
        }
        long now = System.nanoTime();
        long step = now - lastTickNanos;
        lastTickNanos = now;
        pendingElapsedNanos += Math.max(0, Math.min(step, maxStepNanos));
        if (pendingElapsedNanos < limitNanos) {
            return null;
        }
        Expired expired = new Expired(pending, hostnameAtPrepare);
        takePending();
        return expired;
    }

    /** A pending checkpoint given up on, with the hostname at its {@code prepare}. */
    record Expired(HookContext prepared, String hostnameAtPrepare) {}
}
