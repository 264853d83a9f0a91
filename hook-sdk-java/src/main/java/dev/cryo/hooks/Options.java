package dev.cryo.hooks;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * The client's settings. Immutable; the {@code with…} methods return changed copies.
 *
 * <pre>{@code
 * Options options = Options.fromEnvironment().withDefaultHookTimeout(Duration.ofSeconds(5));
 * }</pre>
 */
public final class Options {
    /** Where the webhook mounts the socket when {@code CRYO_HOOK_SOCKET} is not set. */
    public static final Path DEFAULT_SOCKET = Path.of("/run/cryo/agent.sock");
    public static final String SOCKET_ENV = "CRYO_HOOK_SOCKET";
    public static final String POD_UID_ENV = "CRYO_POD_UID";
    public static final String CONTAINER_ENV = "CRYO_CONTAINER_NAME";

    private final Path socketPath;
    private final String podUid;
    private final String containerName;
    private final Duration defaultHookTimeout;
    private final Duration outcomeTimeout;
    private final Supplier<String> hostname;

    private Options(Path socketPath, String podUid, String containerName, Duration defaultHookTimeout,
            Duration outcomeTimeout, Supplier<String> hostname) {
        this.socketPath = socketPath;
        this.podUid = podUid;
        this.containerName = containerName;
        this.defaultHookTimeout = defaultHookTimeout;
        this.outcomeTimeout = outcomeTimeout;
        this.hostname = hostname;
    }

    /** Reads {@code CRYO_HOOK_SOCKET}, {@code CRYO_POD_UID} and {@code CRYO_CONTAINER_NAME}. */
    public static Options fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** As {@link #fromEnvironment()}, from the given variables. */
    public static Options fromEnvironment(Map<String, String> env) {
        String socket = env.get(SOCKET_ENV);
        return new Options(
                socket == null || socket.isEmpty() ? DEFAULT_SOCKET : Path.of(socket),
                env.getOrDefault(POD_UID_ENV, ""),
                env.getOrDefault(CONTAINER_ENV, ""),
                Duration.ofSeconds(10),
                Duration.ofSeconds(120),
                Hostname::current);
    }

    /** The agent's unix socket. */
    public Path socketPath() {
        return socketPath;
    }

    /** The pod UID the process starts out believing it runs in ({@code ""} if unknown). */
    public String podUid() {
        return podUid;
    }

    /** This container's name, sent in {@code hello} ({@code ""} if unknown: gets every {@code prepare}). */
    public String containerName() {
        return containerName;
    }

    /** The timeout of hooks that set none. Default 10 s. */
    public Duration defaultHookTimeout() {
        return defaultHookTimeout;
    }

    /**
     * How long after {@code ready} the client waits for the outcome before it runs the
     * post-restore hooks anyway (§2.6). Default 120 s.
     */
    public Duration outcomeTimeout() {
        return outcomeTimeout;
    }

    /**
     * Reads the pod's hostname; compared before and after a checkpoint when the agent is gone
     * (§2.6). Default: the content of {@code /etc/hostname} (a restored copy sees its new pod's
     * name there), or the UTS hostname when that file cannot be read.
     */
    public Supplier<String> hostname() {
        return hostname;
    }

    public Options withSocketPath(Path path) {
        return new Options(Objects.requireNonNull(path, "path"), podUid, containerName, defaultHookTimeout,
                outcomeTimeout, hostname);
    }

    public Options withPodUid(String uid) {
        return new Options(socketPath, Objects.requireNonNull(uid, "uid"), containerName, defaultHookTimeout,
                outcomeTimeout, hostname);
    }

    public Options withContainerName(String name) {
        return new Options(socketPath, podUid, Objects.requireNonNull(name, "name"), defaultHookTimeout,
                outcomeTimeout, hostname);
    }

    public Options withDefaultHookTimeout(Duration timeout) {
        return new Options(socketPath, podUid, containerName, positive(timeout), outcomeTimeout, hostname);
    }

    public Options withOutcomeTimeout(Duration timeout) {
        return new Options(socketPath, podUid, containerName, defaultHookTimeout, positive(timeout), hostname);
    }

    public Options withHostname(Supplier<String> source) {
        return new Options(socketPath, podUid, containerName, defaultHookTimeout, outcomeTimeout,
                Objects.requireNonNull(source, "source"));
    }

    /**
     * Reads the pod's hostname from this file instead of {@code /etc/hostname}, each time it is
     * needed, trimmed; the UTS hostname when the file cannot be read or is empty.
     */
    public Options withHostnameFile(Path file) {
        return withHostname(Hostname.fromFile(Objects.requireNonNull(file, "file")));
    }

    private static Duration positive(Duration d) {
        Objects.requireNonNull(d, "duration");
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException("must be positive: " + d);
        }
        return d;
    }

    @Override
    public String toString() {
        return "Options[socket=" + socketPath + ", podUid=" + podUid + ", container=" + containerName
                + ", defaultHookTimeout=" + defaultHookTimeout + ", outcomeTimeout=" + outcomeTimeout + "]";
    }
}
