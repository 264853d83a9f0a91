package dev.cryo.hooks;

import java.util.Map;

/**
 * Observes the client's conversation with the agent, for logs, metrics and tests. All methods
 * have empty defaults. They are called on the client's own threads and must return quickly; what
 * they throw is logged and ignored.
 */
public interface ClientListener {
    /**
     * The agent answered {@code hello}; {@code kind} is {@code welcome}, {@code resumed} or
     * {@code restored} and {@code message} the answer as received (parsed JSON). Called before any
     * post-restore hooks it triggers are started.
     */
    default void connected(String kind, Map<String, Object> message) {}

    /** The client sent {@code ready} or {@code failed}; {@code message} is what it sent. */
    default void answered(String type, Map<String, Object> message) {}

    /** A connection closed, from either side (1006 when it ended without a close frame). */
    default void disconnected(int code, String reason) {}

    /** The agent sent an {@code error} message. */
    default void protocolError(String code, String message, Map<String, Object> error) {}
}
