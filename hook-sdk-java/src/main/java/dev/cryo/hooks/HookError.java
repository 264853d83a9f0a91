package dev.cryo.hooks;

import java.util.LinkedHashMap;
import java.util.Map;

/** One entry of {@code failed.errors}: the hook's name ({@code ""} if unnamed), what went wrong, and whether it timed out. */
record HookError(String hook, String message, boolean timedOut) {
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
