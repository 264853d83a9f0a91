package dev.cryo.hooks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the client's messages (§2). */
final class Messages {
    static final int PROTOCOL = 1;
    static final String CLIENT_NAME = "cryo-hook-sdk-java";
    static final String CLIENT_VERSION = "0.1.0";
    /** The protocol features this client implements (§2.1 {@code hello.features}). */
    static final List<String> FEATURES = List.of("superseded");
    private static final int MAX_ERROR_MESSAGE_CHARS = 1_000;

    private Messages() {}

    static Map<String, Object> hello(String sessionId, long pid, String container, String podUid,
            long restoreCount, String pendingCheckpoint) {
        Map<String, Object> client = new LinkedHashMap<>();
        client.put("name", CLIENT_NAME);
        client.put("version", CLIENT_VERSION);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "hello");
        m.put("protocol", PROTOCOL);
        m.put("sessionId", sessionId);
        m.put("pid", pid);
        m.put("container", container);
        m.put("podUid", podUid);
        m.put("restoreCount", restoreCount);
        m.put("pendingCheckpoint", pendingCheckpoint);
        m.put("client", client);
        m.put("features", new ArrayList<Object>(FEATURES));
        return m;
    }

    static Map<String, Object> ready(String id, String checkpointId, double hookDurationMs) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "ready");
        m.put("id", id);
        m.put("checkpointId", checkpointId);
        m.put("hookDurationMs", round(hookDurationMs));
        return m;
    }

    /** A {@code failed} that fits the 64 KiB message limit (surplus errors are summarised). */
    static Map<String, Object> failed(String id, String checkpointId, double hookDurationMs, List<HookError> errors) {
        int shown = errors.size();
        while (true) {
            List<Object> list = new ArrayList<>();
            for (int i = 0; i < shown; i++) {
                list.add(errors.get(i).toJson(MAX_ERROR_MESSAGE_CHARS));
            }
            if (shown < errors.size()) {
                list.add(new HookError("", (errors.size() - shown) + " more hooks failed", false).toJson(100));
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("type", "failed");
            m.put("id", id);
            m.put("checkpointId", checkpointId);
            m.put("hookDurationMs", round(hookDurationMs));
            m.put("errors", list);
            if (shown == 0 || utf8Length(Json.write(m)) <= WebSocketConnection.MAX_MESSAGE_BYTES) {
                return m;
            }
            shown = shown / 2;
        }
    }

    static Map<String, Object> pong(Object id) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "pong");
        if (id != null) {
            m.put("id", id);
        }
        return m;
    }

    static Map<String, Object> error(String code, String message) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "error");
        m.put("code", code);
        m.put("message", message);
        return m;
    }

    private static double round(double ms) {
        return Math.round(ms * 1000) / 1000.0;
    }

    private static int utf8Length(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }
}
