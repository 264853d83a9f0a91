package dev.cryo.hooks;

import java.time.Duration;
import java.util.Objects;

/**
 * A pre-checkpoint and/or post-restore hook: the counterpart of CRaC's
 * {@code org.crac.Resource}. Build one with {@link #named(String)} and register it with
 * {@link CheckpointHooks#register(CheckpointHook)}. Immutable; may be registered more than once.
 *
 * <pre>{@code
 * CheckpointHook.named("db-pool").priority(0).timeout(Duration.ofSeconds(5))
 *     .beforeCheckpoint(ctx -> pool.close())
 *     .afterRestore(ctx -> pool.open())
 *     .build();
 * }</pre>
 */
public final class CheckpointHook {
    private final String name;
    private final int priority;
    private final Duration timeout;
    private final HookAction beforeCheckpoint;
    private final HookAction afterRestore;

    private CheckpointHook(Builder builder) {
        this.name = builder.name;
        this.priority = builder.priority;
        this.timeout = builder.timeout;
        this.beforeCheckpoint = builder.beforeCheckpoint;
        this.afterRestore = builder.afterRestore;
    }

    /** Starts a hook with this name (reported in {@code failed.errors}; may be empty). */
    public static Builder named(String name) {
        return new Builder(Objects.requireNonNull(name, "name"));
    }

    /** Starts an unnamed hook (its errors are reported with the name {@code ""}). */
    public static Builder builder() {
        return new Builder("");
    }

    public String name() {
        return name;
    }

    public int priority() {
        return priority;
    }

    /** The hook's own timeout, or {@code null} for the client's default ({@link Options#defaultHookTimeout()}). */
    public Duration timeout() {
        return timeout;
    }

    /** May be {@code null}: nothing to do before a checkpoint. */
    public HookAction beforeCheckpoint() {
        return beforeCheckpoint;
    }

    /** May be {@code null}: nothing to do after restore. */
    public HookAction afterRestore() {
        return afterRestore;
    }

    @Override
    public String toString() {
        return "CheckpointHook[" + (name.isEmpty() ? "(unnamed)" : name) + ", priority " + priority + "]";
    }

    /** Builds a {@link CheckpointHook}. */
    public static final class Builder {
        private final String name;
        private int priority;
        private Duration timeout;
        private HookAction beforeCheckpoint;
        private HookAction afterRestore;

        private Builder(String name) {
            this.name = name;
        }

        /**
         * Orders hooks before registration order: a higher priority runs later before a checkpoint
         * and earlier after restore. Default 0.
         */
        public Builder priority(int priority) {
            this.priority = priority;
            return this;
        }

        /**
         * How long the client waits for this hook (each phase separately). Before a checkpoint it
         * is further capped by the {@code prepare} deadline. Default: {@link Options#defaultHookTimeout()}.
         */
        public Builder timeout(Duration timeout) {
            Objects.requireNonNull(timeout, "timeout");
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("timeout must be positive: " + timeout);
            }
            this.timeout = timeout;
            return this;
        }

        /** What to do before a checkpoint: close connections, flush, stop listeners. */
        public Builder beforeCheckpoint(HookAction action) {
            this.beforeCheckpoint = action;
            return this;
        }

        /** What to do afterwards (outcome in the context): reconnect, reseed, refresh. */
        public Builder afterRestore(HookAction action) {
            this.afterRestore = action;
            return this;
        }

        public CheckpointHook build() {
            return new CheckpointHook(this);
        }
    }
}
