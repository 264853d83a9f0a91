package dev.cryo.hooks;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * The pod's hostname as the outcome fallback (§2.6) compares it: the content of
 * {@code /etc/hostname}, which CRI-O and containerd both bind-mount from the pod's sandbox, so a
 * restored copy reads its new pod's name there. The UTS hostname is no use for that: containerd
 * and runc restore the original's with the process. Only when the file cannot be read (or is
 * empty) does this fall back to the UTS hostname.
 */
final class Hostname {
    /** Where the runtime puts the pod's hostname. */
    static final Path ETC_HOSTNAME = Path.of("/etc/hostname");
    private static final Path PROC_HOSTNAME = Path.of("/proc/sys/kernel/hostname");

    private Hostname() {}

    /** The pod's hostname from {@code /etc/hostname}, or the UTS hostname; {@code null} if neither can be read. */
    static String current() {
        return read(ETC_HOSTNAME);
    }

    /** A source that reads {@code file} each time it is asked, falling back as {@link #current()} does. */
    static Supplier<String> fromFile(Path file) {
        return () -> read(file);
    }

    /** The trimmed content of {@code file}, or the UTS hostname if it cannot be read or is empty. Never cached. */
    static String read(Path file) {
        String name = readTrimmed(file);
        return name != null ? name : uts();
    }

    /** The UTS hostname as the kernel has it now, or {@code null} if it cannot be read. */
    static String uts() {
        String name = readTrimmed(PROC_HOSTNAME);
        if (name != null) {
            return name;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static String readTrimmed(Path file) {
        try {
            String name = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).trim();
            return name.isEmpty() ? null : name;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
