package dev.cryo.hooks.conformance;

import dev.cryo.hooks.CheckpointHook;
import dev.cryo.hooks.CheckpointHooks;
import dev.cryo.hooks.ClientListener;
import dev.cryo.hooks.HookAction;
import dev.cryo.hooks.HookContext;
import dev.cryo.hooks.Json;
import dev.cryo.hooks.Options;
import dev.cryo.hooks.Outcome;
import dev.cryo.hooks.Registration;

import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The program the cross-language hook conformance suite drives (test/hook-conformance/).
 *
 * <p>Environment: {@code CRYO_HOOK_SOCKET}, {@code CRYO_POD_UID}, {@code CRYO_CONTAINER_NAME};
 * optionally {@code CRYO_CONFORMANCE_HOSTNAME_FILE} (the pod's hostname is read from this file
 * instead of {@code /etc/hostname}, trimmed, each time the client asks; a missing file falls back
 * to the UTS hostname, as the client does with {@code /etc/hostname}) and
 * {@code CRYO_CONFORMANCE_OUTCOME_TIMEOUT_MS} (replaces the 120 s outcome fallback of §2.6).
 *
 * <p>Reads one JSON command per line from stdin, writes one JSON event per line to stdout, each
 * flushed at once; logs go to stderr. Commands: register, listen, unregister, start, stop, exit
 * (see the suite's README). End of stdin exits with status 0.
 */
public final class ConformanceApp {
    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private final PrintStream events;
    private final CheckpointHooks hooks;
    private final Map<String, List<Registration>> registrations = new LinkedHashMap<>();

    private ConformanceApp(PrintStream events, CheckpointHooks hooks) {
        this.events = events;
        this.hooks = hooks;
    }

    public static void main(String[] args) throws IOException {
        // Events own stdout; anything else printed by accident goes to stderr.
        PrintStream events = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        System.setOut(System.err);

        Options options = Options.fromEnvironment();
        String hostnameFile = System.getenv("CRYO_CONFORMANCE_HOSTNAME_FILE");
        if (hostnameFile != null && !hostnameFile.isEmpty()) {
            options = options.withHostnameFile(Path.of(hostnameFile));
        }
        String outcomeTimeout = System.getenv("CRYO_CONFORMANCE_OUTCOME_TIMEOUT_MS");
        if (outcomeTimeout != null && !outcomeTimeout.isEmpty()) {
            options = options.withOutcomeTimeout(Duration.ofMillis(Long.parseLong(outcomeTimeout.trim())));
        }

        ConformanceApp app = new ConformanceApp(events, CheckpointHooks.create(options));
        app.listen();
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = stdin.readLine()) != null) {
            if (!line.isBlank()) {
                app.command(line);
            }
        }
        System.exit(0);
    }

    private void listen() {
        hooks.addListener(new ClientListener() {
            @Override
            public void connected(String kind, Map<String, Object> message) {
                emit(event("connected", "kind", kind, "message", message));
            }

            @Override
            public void answered(String type, Map<String, Object> message) {
                emit(event("answered", "type", type, "message", message));
            }

            @Override
            public void disconnected(int code, String reason) {
                emit(event("disconnected", "code", code, "reason", reason));
            }

            @Override
            public void protocolError(String code, String message, Map<String, Object> error) {
                emit(event("protocol-error", "code", code, "message", message));
            }
        });
    }

    private void command(String line) {
        Map<String, Object> command;
        try {
            command = Json.parseObject(line);
        } catch (RuntimeException e) {
            System.err.println("conformance: not a JSON object: " + line + " (" + e.getMessage() + ")");
            return;
        }
        Object cmd = command.get("cmd");
        try {
            if ("register".equals(cmd)) {
                register(command);
            } else if ("listen".equals(cmd)) {
                listenOn(string(command.get("name"), ""));
            } else if ("unregister".equals(cmd)) {
                List<Registration> list = registrations.remove(string(command.get("name"), ""));
                if (list != null) {
                    list.forEach(Registration::close);
                }
            } else if ("start".equals(cmd)) {
                hooks.start();
            } else if ("stop".equals(cmd)) {
                hooks.stop();
                emit(event("stopped"));
            } else if ("exit".equals(cmd)) {
                emit(event("ack", "cmd", "exit"));
                System.exit(0);
            } else {
                System.err.println("conformance: unknown command: " + line);
                return;
            }
        } catch (RuntimeException e) {
            System.err.println("conformance: command failed: " + line);
            e.printStackTrace();
            return;
        }
        emit(event("ack", "cmd", cmd));
    }

    private void register(Map<String, Object> command) {
        String name = string(command.get("name"), "");
        CheckpointHook.Builder builder = CheckpointHook.named(name)
                .beforeCheckpoint(behaviour(name, "before", command.get("before")))
                .afterRestore(behaviour(name, "after", command.get("after")));
        if (command.get("priority") instanceof Number) {
            builder.priority(((Number) command.get("priority")).intValue());
        }
        if (command.get("timeoutMs") instanceof Number) {
            builder.timeout(Duration.ofMillis(((Number) command.get("timeoutMs")).longValue()));
        }
        Registration registration = hooks.register(builder.build());
        registrations.computeIfAbsent(name, k -> new ArrayList<>()).add(registration);
    }

    /**
     * A TCP listener on 127.0.0.1 and a hook that closes it before a checkpoint and opens it again
     * on the same port after, unless the outcome is SUPERSEDED (a copy serves from the checkpoint).
     */
    private void listenOn(String name) {
        Listener listener = new Listener(name);
        try {
            listener.open();
        } catch (IOException e) {
            throw new IllegalStateException("cannot listen", e);
        }
        Registration registration = hooks.register(CheckpointHook.named(name)
                .beforeCheckpoint(ctx -> listener.close())
                .afterRestore(ctx -> {
                    if (ctx.outcome() != Outcome.SUPERSEDED) {
                        listener.open();
                    }
                })
                .build());
        registrations.computeIfAbsent(name, k -> new ArrayList<>()).add(registration);
    }

    /** A listening socket that reports each change as a {@code listener} event. */
    private final class Listener {
        private final String name;
        private ServerSocketChannel channel;
        private int port;

        Listener(String name) {
            this.name = name;
        }

        synchronized void open() throws IOException {
            if (channel != null) {
                return;
            }
            ServerSocketChannel opened = ServerSocketChannel.open();
            opened.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            channel = opened;
            port = ((InetSocketAddress) opened.getLocalAddress()).getPort();
            emit(event("listener", "name", name, "listening", true, "port", port));
        }

        synchronized void close() throws IOException {
            if (channel == null) {
                return;
            }
            channel.close();
            channel = null;
            emit(event("listener", "name", name, "listening", false, "port", port));
        }
    }

    /** "ok" (or omitted), "throw", "hang" or {"sleepMs": N}. */
    private HookAction behaviour(String name, String phase, Object spec) {
        if (spec == null || "ok".equals(spec)) {
            return ctx -> started(phase, name, ctx);
        }
        if ("throw".equals(spec)) {
            return ctx -> {
                started(phase, name, ctx);
                throw new Exception(name + " failed");
            };
        }
        if ("hang".equals(spec)) {
            return ctx -> {
                started(phase, name, ctx);
                while (true) {
                    Thread.sleep(Long.MAX_VALUE); // until interrupted (the client gave up on it)
                }
            };
        }
        if (spec instanceof Map && ((Map<?, ?>) spec).get("sleepMs") instanceof Number) {
            long ms = ((Number) ((Map<?, ?>) spec).get("sleepMs")).longValue();
            return ctx -> {
                started(phase, name, ctx);
                Thread.sleep(ms);
            };
        }
        throw new IllegalArgumentException("unknown hook behaviour " + Json.write(spec));
    }

    private void started(String phase, String name, HookContext ctx) {
        Map<String, Object> context = new LinkedHashMap<>();
        context.put("checkpointId", ctx.checkpointId());
        context.put("reason", ctx.reason());
        context.put("deadline", ctx.deadline() == null ? null : ISO_MILLIS.format(ctx.deadline()));
        context.put("restoreCount", ctx.restoreCount());
        context.put("outcome", ctx.outcome() == null ? null : ctx.outcome().wireName());
        emit(event("hook", "phase", phase, "name", name, "context", context));
    }

    private static Map<String, Object> event(String name, Object... fields) {
        Map<String, Object> event = new LinkedHashMap<>();
        event.put("event", name);
        for (int i = 0; i < fields.length; i += 2) {
            event.put((String) fields[i], fields[i + 1]);
        }
        return event;
    }

    private void emit(Map<String, Object> event) {
        String line = Json.write(event);
        synchronized (events) {
            events.print(line);
            events.print('\n');
            events.flush();
        }
    }

    private static String string(Object value, String fallback) {
        return value instanceof String ? (String) value : fallback;
    }
}
