package dev.cryo.hooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The client's own messages, as the agent will parse them. */
class MessagesTest {
    @Test
    void helloAnnouncesThisVersionOfTheClient() {
        // test.sh and the pom pass pom.xml's version, so the hello cannot fall behind a release.
        String version = System.getProperty("cryo.hooks.version");
        assertNotNull(version, "run with -Dcryo.hooks.version=<pom.xml's version> (test.sh and the pom do)");
        Map<String, Object> hello = Json.parseObject(Json.write(Messages.hello("s", 7, "app", "uid", 2, "ns/c")));
        assertEquals(Map.of("name", "cryo-hook-sdk-java", "version", version), hello.get("client"));
        assertEquals(1L, hello.get("protocol"));
        assertEquals(List.of("superseded"), hello.get("features"));
        assertEquals("ns/c", hello.get("pendingCheckpoint"));
        assertEquals(2L, hello.get("restoreCount"));
    }

    @Test
    void helloSaysNullWhenNoCheckpointIsPending() {
        Map<String, Object> hello = Json.parseObject(Json.write(Messages.hello("s", 7, "", "", 0, null)));
        assertTrue(hello.containsKey("pendingCheckpoint"));
        assertNull(hello.get("pendingCheckpoint"));
    }

    @Test
    void aFailedWithManyLongErrorsStillFitsOneMessage() {
        List<HookError> errors = new ArrayList<>();
        for (int i = 0; i < 500; i++) {
            errors.add(new HookError("hook-" + i, "é".repeat(5_000), i % 2 == 0));
        }
        String text = Json.write(Messages.failed("p-1", "ns/c", 12.3456789, errors));
        assertTrue(text.getBytes(StandardCharsets.UTF_8).length <= WebSocketConnection.MAX_MESSAGE_BYTES, "" + text.length());
        Map<String, Object> failed = Json.parseObject(text);
        assertEquals(12.346, failed.get("hookDurationMs"));
        List<?> listed = (List<?>) failed.get("errors");
        Map<?, ?> first = (Map<?, ?>) listed.get(0);
        assertEquals("hook-0", first.get("hook"));
        assertEquals(true, first.get("timedOut"));
        assertEquals("é".repeat(1_000) + "…", first.get("message")); // each message cut to 1,000 characters
        Map<?, ?> last = (Map<?, ?>) listed.get(listed.size() - 1);
        assertEquals((500 - (listed.size() - 1)) + " more hooks failed", last.get("message"));
        assertEquals("", last.get("hook"));
    }

    @Test
    void aFailedWithFewErrorsListsThemAll() {
        List<HookError> errors = List.of(new HookError("a", "boom", false), new HookError("", "timed out after 5 ms", true));
        Map<String, Object> failed = Json.parseObject(Json.write(Messages.failed("p-2", null, 5, errors)));
        assertEquals(List.of(Map.of("hook", "a", "message", "boom", "timedOut", false),
                Map.of("hook", "", "message", "timed out after 5 ms", "timedOut", true)), failed.get("errors"));
        assertTrue(failed.containsKey("checkpointId"));
        assertEquals(5L, failed.get("hookDurationMs"));
    }
}
