package dev.cryo.hooks;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The registered hooks and their order (§3). While a checkpoint is in progress the registry is
 * frozen: registering and unregistering then take effect when it thaws.
 */
final class HookRegistry {
    /** A registered hook with its registration sequence number. */
    static final class Entry implements Registration {
        final CheckpointHook hook;
        final long sequence;
        private final HookRegistry registry;
        private final AtomicBoolean closed = new AtomicBoolean();

        Entry(HookRegistry registry, CheckpointHook hook, long sequence) {
            this.registry = registry;
            this.hook = hook;
            this.sequence = sequence;
        }

        @Override
        public void close() {
            if (closed.compareAndSet(false, true)) {
                registry.remove(this);
            }
        }

        @Override
        public String toString() {
            return hook + " #" + sequence;
        }
    }

    /** Before a checkpoint: priority ascending (higher later), then newest first. */
    private static final Comparator<Entry> BEFORE = Comparator.<Entry>comparingInt(e -> e.hook.priority())
            .thenComparing(Comparator.<Entry>comparingLong(e -> e.sequence).reversed());
    /** After restore: the exact reverse (higher priority earlier, then oldest first). */
    private static final Comparator<Entry> AFTER = BEFORE.reversed();

    private final List<Entry> active = new ArrayList<>();
    private final List<Entry> pendingAdds = new ArrayList<>();
    private final Set<Entry> pendingRemoves = new LinkedHashSet<>();
    private long nextSequence;
    private int frozen;

    synchronized Registration register(CheckpointHook hook) {
        Objects.requireNonNull(hook, "hook");
        Entry entry = new Entry(this, hook, nextSequence++);
        if (frozen > 0) {
            pendingAdds.add(entry);
        } else {
            active.add(entry);
        }
        return entry;
    }

    private synchronized void remove(Entry entry) {
        if (pendingAdds.remove(entry)) {
            return;
        }
        if (frozen > 0) {
            pendingRemoves.add(entry);
        } else {
            active.remove(entry);
        }
    }

    /** The hooks with a pre-checkpoint action, in the order to run them. */
    synchronized List<Entry> beforeCheckpointOrder() {
        List<Entry> list = new ArrayList<>();
        for (Entry e : active) {
            if (e.hook.beforeCheckpoint() != null) {
                list.add(e);
            }
        }
        list.sort(BEFORE);
        return list;
    }

    /** The hooks with a post-restore action, in the order to run them. */
    synchronized List<Entry> afterRestoreOrder() {
        List<Entry> list = new ArrayList<>();
        for (Entry e : active) {
            if (e.hook.afterRestore() != null) {
                list.add(e);
            }
        }
        list.sort(AFTER);
        return list;
    }

    /** A checkpoint began: changes wait until the matching {@link #thaw()}. Nests. */
    synchronized void freeze() {
        frozen++;
    }

    /** A checkpoint is over: apply the changes made meanwhile. */
    synchronized void thaw() {
        if (frozen == 0) {
            return;
        }
        frozen--;
        if (frozen == 0) {
            active.removeAll(pendingRemoves);
            active.addAll(pendingAdds);
            pendingRemoves.clear();
            pendingAdds.clear();
        }
    }

    synchronized int size() {
        return active.size();
    }
}
