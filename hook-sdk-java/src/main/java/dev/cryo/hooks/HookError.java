package dev.cryo.hooks;

import java.util.LinkedHashMap;
import java.util.Map;

/** One entry of {@code failed.errors}. */
final class HookError {
    final String hook;
    final String message;
    final boolean timedOut;

    HookError(String hook, String message, boolean timedOut) {
        this.hook = hook;
        this.message = message;
        this.timedOut = timedOut;
    }

    Map<String, Object> toJson(int maxMessageChars) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("hook", hook);
        json.put("message", message.length() > maxMessageChars ? message.substring(0, maxMessageChars) + "…" : message);
        json.put("timedOut", timedOut);
        return json;
    }

    @Override
    public String toString() {
        return (hook.isEmpty() ? "(unnamed hook)" : hook) + ": " + message;
    }
}
