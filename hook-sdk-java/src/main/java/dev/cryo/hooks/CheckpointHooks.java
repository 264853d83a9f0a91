package dev.cryo.hooks;

import java.util.Objects;

/**
 * Cryo's checkpoint hooks for a JVM: the client of the node agent's hook protocol
 * ({@code docs/hook-protocol.md}) plus a CRaC-like registry of hooks.
 *
 * <pre>{@code
 * CheckpointHooks hooks = CheckpointHooks.global();
 * Registration r = hooks.register(CheckpointHook.named("db-pool").timeout(Duration.ofSeconds(5))
 *     .beforeCheckpoint(ctx -> pool.close())
 *     .afterRestore(ctx -> pool.open())
 *     .build());
 * hooks.start();
 * }</pre>
 *
 * <p>The client runs on daemon threads only, so it never keeps the JVM alive, and it never
 * throws into the application: without an agent socket it logs once and keeps retrying quietly.
 * Logging goes to the java.util.logging logger {@code dev.cryo.hooks}. Thread-safe.
 */
public final class CheckpointHooks {
    private static final Object GLOBAL_LOCK = new Object();
    private static CheckpointHooks global;

    private final Options options;
    private final HookRegistry registry = new HookRegistry();
    private final AgentClient client;

    private CheckpointHooks(Options options) {
        this.options = Objects.requireNonNull(options, "options");
        this.client = new AgentClient(options, registry);
    }

    /**
     * A new, unstarted client. One per JVM is the rule: the agent identifies the process by its
     * session id, which every instance in this JVM shares; prefer {@link #global()}.
     */
    public static CheckpointHooks create(Options options) {
        return new CheckpointHooks(options);
    }

    /** The JVM-wide instance, made from {@link Options#fromEnvironment()} on first use; not started. */
    public static CheckpointHooks global() {
        synchronized (GLOBAL_LOCK) {
            if (global == null) {
                global = new CheckpointHooks(Options.fromEnvironment());
            }
            return global;
        }
    }

    /**
     * Registers a hook. Pre-checkpoint hooks run in reverse registration order, post-restore hooks
     * in registration order, both ordered by {@link CheckpointHook.Builder#priority(int)} first.
     * During a checkpoint the registration takes effect when the checkpoint is over. The hook is
     * held (strongly) until the returned registration is closed.
     */
    public Registration register(CheckpointHook hook) {
        return registry.register(hook);
    }

    /** Observes the conversation with the agent (see {@link ClientListener}). */
    public Registration addListener(ClientListener listener) {
        return client.addListener(Objects.requireNonNull(listener, "listener"));
    }

    /**
     * Starts connecting to the agent, in the background; returns at once. Calling it again
     * does nothing. May be called again after {@link #stop()}.
     */
    public void start() {
        client.start();
    }

    /**
     * Closes the connection (code 1000) and stops reconnecting; waits briefly (about 2 s at
     * most) for the close to complete. Hooks already running carry on. Calling it again does nothing.
     */
    public void stop() {
        client.stop();
    }

    /** The session id this JVM presents to the agent (128 random bits as hex, fixed per JVM). */
    public String sessionId() {
        return Session.SESSION_ID;
    }

    /**
     * True from a {@link Outcome#SUPERSEDED} outcome until the outcome of a later checkpoint of
     * this process (if there ever is one): a copy carries on from the checkpoint elsewhere, so
     * this process must stay quiet until it is stopped. For code the hooks do not reach (a loop
     * taking jobs). Set when the post-restore hooks start.
     */
    public boolean isSuperseded() {
        return client.superseded();
    }

    /** How many restores lie behind this process, as the agent last said. */
    public long restoreCount() {
        return client.session().restoreCount();
    }

    public Options options() {
        return options;
    }
}
