package dev.cryo.hooks;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Reads the UTS hostname as the kernel has it now (a restored copy gets the new pod's). */
final class Hostname {
    private static final Path PROC_HOSTNAME = Path.of("/proc/sys/kernel/hostname");

    private Hostname() {}

    /** The current hostname, or {@code null} if it cannot be read. Never cached. */
    static String current() {
        try {
            return new String(Files.readAllBytes(PROC_HOSTNAME), StandardCharsets.UTF_8).trim();
        } catch (IOException | RuntimeException e) {
            try {
                return InetAddress.getLocalHost().getHostName();
            } catch (IOException | RuntimeException e2) {
                return null;
            }
        }
    }
}
