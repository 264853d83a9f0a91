package dev.cryo.hooks.examples;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.cryo.hooks.CheckpointHook;
import dev.cryo.hooks.CheckpointHooks;
import dev.cryo.hooks.ClientListener;
import dev.cryo.hooks.Outcome;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;

/**
 * The JVM of Cryo's fast-start case: a service that spends many seconds at start building an
 * in-memory index, and whose copies restored from a checkpoint answer from it at once. Its hooks
 * do what a real service's must around a checkpoint:
 * <ul>
 * <li>{@code http-server}: stop listening before it (no established TCP connection may be
 * dumped; a listener is better opened again in the copy's own network) and listen again after,
 * except when {@code SUPERSEDED} (a migration's copy serves now);</li>
 * <li>{@code upstream}: close the outbound connection to {@code UPSTREAM} and connect again
 * after;</li>
 * <li>{@code identity}: a restored copy takes a new instance id (copies must not share the
 * original's), before the listener opens again;</li>
 * <li>{@code heap}: a full GC last before the dump, so the garbage of the warm-up is not dumped
 * (with {@code -XX:+UseSerialGC} and a low {@code MaxHeapFreeRatio} the heap also shrinks).</li>
 * </ul>
 * The index maps each key k in [0, INDEX_ENTRIES) to SHA-256 applied INDEX_ROUNDS times to
 * {@code "cryo:" + k}, in hex: anyone can check an answer without the index (the tests do).
 *
 * <pre>
 * GET /lookup?key=K  200 {"key":K,"value":"…","instanceId":"…",…} once the index is built, else 503
 * GET /ready         200 once the index is built (the readiness probe), else 503
 * GET /state         200 {"ready":…,"warmUpMillis":…,"instanceId":…,"restoreCount":…,"lastOutcome":…,"events":[…]}
 * GET /upstream      200 {"answer":"…"}: a line sent to UPSTREAM and its echo
 * </pre>
 * Env: PORT (8080), UPSTREAM (host:port of a line echo server; none by default), INDEX_ENTRIES
 * (400000), INDEX_ROUNDS (320). The JVM flags a checkpoint wants are in docs/jvm.md.
 */
public final class WarmIndexService {
    private final int port;
    private final String upstreamAddress;
    private final int entries;
    private final int rounds;
    private final long startedAtMillis = System.currentTimeMillis();

    private final Map<Integer, String> index;
    private volatile boolean ready;
    private volatile long warmUpMillis = -1;
    private volatile String instanceId = UUID.randomUUID().toString();
    private volatile long restoreCount;
    private volatile Outcome lastOutcome;
    private final List<String> events = new ArrayList<>();

    private HttpServer server;
    private Socket upstream;
    private BufferedReader upstreamReader;

    private WarmIndexService(Map<String, String> env) {
        port = Integer.parseInt(env.getOrDefault("PORT", "8080"));
        upstreamAddress = env.getOrDefault("UPSTREAM", "");
        entries = Integer.parseInt(env.getOrDefault("INDEX_ENTRIES", "400000"));
        rounds = Integer.parseInt(env.getOrDefault("INDEX_ROUNDS", "320"));
        index = new HashMap<>(entries * 4 / 3 + 1);
    }

    public static void main(String[] args) throws Exception {
        WarmIndexService app = new WarmIndexService(System.getenv());
        CheckpointHooks hooks = CheckpointHooks.global();
        // Registered first: before a checkpoint it runs last, after it first (then the others).
        hooks.register(CheckpointHook.named("record")
                .beforeCheckpoint(ctx -> app.event("before " + ctx.checkpointId()))
                .afterRestore(ctx -> {
                    app.lastOutcome = ctx.outcome();
                    app.event("after " + ctx.checkpointId() + " " + ctx.outcome().wireName() + " " + ctx.restoreCount());
                })
                .build());
        hooks.register(CheckpointHook.named("upstream").timeout(Duration.ofSeconds(5))
                .beforeCheckpoint(ctx -> app.closeUpstream())
                .afterRestore(ctx -> {
                    if (ctx.outcome() != Outcome.SUPERSEDED) {
                        app.connectUpstream();
                    }
                })
                .build());
        hooks.register(CheckpointHook.named("http-server").timeout(Duration.ofSeconds(5))
                .beforeCheckpoint(ctx -> app.close())
                .afterRestore(ctx -> {
                    if (ctx.outcome() != Outcome.SUPERSEDED) {
                        app.listen();
                    }
                })
                .build());
        // Priority 10: after a restore it runs before the listener opens, so no request of a copy
        // is answered under the original's id.
        hooks.register(CheckpointHook.named("identity").priority(10)
                .afterRestore(ctx -> {
                    if (ctx.outcome() == Outcome.RESTORED) {
                        app.instanceId = UUID.randomUUID().toString();
                        app.restoreCount = ctx.restoreCount();
                    }
                })
                .build());
        // Priority 20: the last hook before the dump, once nothing else allocates.
        hooks.register(CheckpointHook.named("heap").priority(20)
                .beforeCheckpoint(ctx -> System.gc())
                .build());
        hooks.addListener(new ClientListener() {
            @Override
            public void connected(String kind, Map<String, Object> message) {
                app.event("connected " + kind);
            }
        });
        hooks.start();

        app.listen();
        app.connectUpstream();
        app.build();
        // Keep main alive: while the listener is closed for a checkpoint no other non-daemon
        // thread exists, and the JVM would end right there.
        new CountDownLatch(1).await();
    }

    /** What the index holds for {@code key}: SHA-256, {@code rounds} times, of "cryo:key". */
    static String valueOf(int key, int rounds) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            byte[] digest = ("cryo:" + key).getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < rounds; i++) {
                digest = sha.digest(digest);
            }
            return HexFormat.of().formatHex(digest);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The warm-up: many seconds of work whose result the service then answers from. */
    private void build() {
        long start = System.nanoTime();
        for (int key = 0; key < entries; key++) {
            String value = valueOf(key, rounds);
            synchronized (index) {
                index.put(key, value);
            }
        }
        warmUpMillis = (System.nanoTime() - start) / 1_000_000;
        ready = true;
        event("ready after " + warmUpMillis + " ms");
        System.err.println("index of " + entries + " entries built in " + warmUpMillis + " ms");
    }

    private void event(String line) {
        synchronized (events) {
            events.add(line);
        }
    }

    private synchronized void listen() throws IOException {
        if (server != null) {
            return;
        }
        HttpServer s = HttpServer.create(new InetSocketAddress(port), 0);
        s.createContext("/lookup", this::lookup);
        s.createContext("/ready", exchange -> reply(exchange, ready ? 200 : 503, "{\"ready\":" + ready + "}"));
        s.createContext("/state", exchange -> reply(exchange, 200, state()));
        s.createContext("/upstream", this::askUpstream);
        s.start();
        server = s;
        System.err.println("listening on port " + port);
    }

    private synchronized void close() {
        if (server != null) {
            server.stop(0); // closes the listener and every connection now
            server = null;
        }
    }

    private synchronized void connectUpstream() throws IOException {
        if (upstreamAddress.isEmpty() || upstream != null) {
            return;
        }
        int colon = upstreamAddress.lastIndexOf(':');
        Socket socket = new Socket(upstreamAddress.substring(0, colon), Integer.parseInt(upstreamAddress.substring(colon + 1)));
        upstreamReader = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        upstream = socket;
    }

    private synchronized void closeUpstream() throws IOException {
        if (upstream != null) {
            upstream.close();
            upstream = null;
            upstreamReader = null;
        }
    }

    private void lookup(HttpExchange exchange) throws IOException {
        String query = exchange.getRequestURI().getQuery();
        int key;
        try {
            key = Integer.parseInt(query == null ? "" : query.replaceFirst("^key=", ""));
        } catch (NumberFormatException e) {
            reply(exchange, 400, "{\"error\":\"give ?key=<a whole number>\"}");
            return;
        }
        if (!ready) {
            reply(exchange, 503, "{\"error\":\"warming up\"}");
            return;
        }
        String value;
        synchronized (index) {
            value = index.get(key);
        }
        if (value == null) {
            reply(exchange, 404, "{\"error\":\"no key " + key + " (keys are 0 to " + (entries - 1) + ")\"}");
            return;
        }
        reply(exchange, 200, "{\"key\":" + key + ",\"value\":\"" + value + "\",\"entries\":" + entries + ",\"rounds\":" + rounds
                + ",\"instanceId\":\"" + instanceId + "\",\"restoreCount\":" + restoreCount + "}");
    }

    private void askUpstream(HttpExchange exchange) throws IOException {
        String answer;
        synchronized (this) {
            if (upstream == null) {
                reply(exchange, 502, "{\"error\":\"no upstream connection\"}");
                return;
            }
            PrintWriter out = new PrintWriter(upstream.getOutputStream(), true, StandardCharsets.UTF_8);
            out.println("ping " + instanceId);
            answer = upstreamReader.readLine();
        }
        reply(exchange, 200, "{\"answer\":" + quote(answer == null ? "" : answer) + "}");
    }

    private String state() {
        StringBuilder json = new StringBuilder("{\"ready\":").append(ready)
                .append(",\"entries\":").append(entries)
                .append(",\"warmUpMillis\":").append(warmUpMillis)
                .append(",\"startedAtMillis\":").append(startedAtMillis)
                .append(",\"instanceId\":\"").append(instanceId).append('"')
                .append(",\"restoreCount\":").append(restoreCount)
                .append(",\"lastOutcome\":").append(lastOutcome == null ? "null" : "\"" + lastOutcome.wireName() + "\"")
                .append(",\"rssBytes\":").append(rssBytes())
                .append(",\"pid\":").append(ProcessHandle.current().pid())
                .append(",\"hostname\":").append(quote(hostname()))
                .append(",\"events\":[");
        synchronized (events) {
            for (int i = 0; i < events.size(); i++) {
                json.append(i == 0 ? "" : ",").append(quote(events.get(i)));
            }
        }
        return json.append("]}").toString();
    }

    /** The process's resident memory (VmRSS of /proc/self/status), what a checkpoint's size is weighed against; -1 if unknown. */
    private static long rssBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // fall through
        }
        return -1;
    }

    /** The UTS name, read as it is now (no lookup: a pod may have no DNS to ask). */
    private static String hostname() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
        } catch (IOException e) {
            return "";
        }
    }

    private static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    private static void reply(HttpExchange exchange, int status, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("content-type", "application/json");
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }
}
