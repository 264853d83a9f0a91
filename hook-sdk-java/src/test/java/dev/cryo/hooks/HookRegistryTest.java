package dev.cryo.hooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.time.Instant;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The order and freezing the package documentation promises. */
class HookRegistryTest {
    private static CheckpointHook hook(String name, int priority) {
        return CheckpointHook.named(name).priority(priority).beforeCheckpoint(ctx -> {}).afterRestore(ctx -> {}).build();
    }

    private static List<String> names(List<HookRegistry.Entry> entries) {
        return entries.stream().map(e -> e.hook.name()).collect(Collectors.toList());
    }

    @Test
    void beforeIsReverseRegistrationOrderAfterPriorityAndAfterIsItsMirror() {
        HookRegistry registry = new HookRegistry();
        registry.register(hook("a", 0));
        registry.register(hook("late", 10));
        registry.register(hook("b", 0));
        registry.register(hook("early", -5));
        registry.register(hook("c", 0));
        assertEquals(List.of("early", "c", "b", "a", "late"), names(registry.beforeCheckpointOrder()));
        assertEquals(List.of("late", "a", "b", "c", "early"), names(registry.afterRestoreOrder()));
    }

    @Test
    void hooksWithoutAnActionForAPhaseAreLeftOutOfIt() {
        HookRegistry registry = new HookRegistry();
        registry.register(CheckpointHook.named("before-only").beforeCheckpoint(ctx -> {}).build());
        registry.register(CheckpointHook.named("after-only").afterRestore(ctx -> {}).build());
        assertEquals(List.of("before-only"), names(registry.beforeCheckpointOrder()));
        assertEquals(List.of("after-only"), names(registry.afterRestoreOrder()));
    }

    @Test
    void changesDuringACheckpointWaitUntilItIsOver() {
        HookRegistry registry = new HookRegistry();
        Registration a = registry.register(hook("a", 0));
        registry.freeze();
        Registration b = registry.register(hook("b", 0));
        a.close();
        assertEquals(List.of("a"), names(registry.afterRestoreOrder()), "the same hooks on both sides of a checkpoint");
        registry.thaw();
        assertEquals(List.of("b"), names(registry.afterRestoreOrder()));
        b.close();
        b.close(); // again: nothing
        assertEquals(0, registry.size());
    }

    @Test
    void aHookRegisteredAndUnregisteredDuringACheckpointNeverRuns() {
        HookRegistry registry = new HookRegistry();
        registry.freeze();
        registry.register(hook("brief", 0)).close();
        registry.thaw();
        assertEquals(0, registry.size());
    }

    @Test
    void theSameHookRegisteredTwiceRunsTwice() {
        HookRegistry registry = new HookRegistry();
        CheckpointHook h = hook("twice", 0);
        Registration first = registry.register(h);
        registry.register(h);
        first.close();
        assertEquals(List.of("twice"), names(registry.beforeCheckpointOrder()));
    }

    @Test
    void aContextIsAValue() {
        Instant deadline = Instant.parse("2026-12-01T20:15:03Z");
        HookContext before = new HookContext("shop/c", "maintenance", deadline, 0, null);
        HookContext after = before.withOutcome(Outcome.RESTORED, 1);
        assertEquals(new HookContext("shop/c", "maintenance", deadline, 1, Outcome.RESTORED), after);
        assertNotEquals(before, after);
        assertEquals("HookContext[checkpointId=shop/c, reason=maintenance, deadline=2026-12-01T20:15:03Z, restoreCount=1,"
                + " outcome=RESTORED]", after.toString());
    }
}
