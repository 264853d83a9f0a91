package dev.cryo.hooks.examples;

import com.sun.net.httpserver.HttpServer;
import dev.cryo.hooks.CheckpointHook;
import dev.cryo.hooks.CheckpointHooks;
import dev.cryo.hooks.Outcome;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;

/**
 * A JDK HttpServer app ready for Cryo: it stops listening before a checkpoint (CRIU cannot dump
 * established TCP connections, and a listening socket is better recreated on the new node) and
 * listens again afterwards; a restored copy also gets a fresh random generator and instance id,
 * which it would otherwise share with the original and every other copy. After a migration's
 * checkpoint ({@code SUPERSEDED}) the original does not listen again: its copy serves, and it
 * waits to be stopped.
 *
 * <pre>
 * java -cp .tmp/java/classes dev.cryo.hooks.examples.HttpServerExample 8080
 * curl localhost:8080/
 * </pre>
 */
public final class HttpServerExample {
    private final int port;
    private HttpServer server;
    private volatile SecureRandom random = new SecureRandom();
    private volatile String instanceId = UUID.randomUUID().toString();
    private volatile long restoreCount;

    private HttpServerExample(int port) {
        this.port = port;
    }

    public static void main(String[] args) throws Exception {
        HttpServerExample app = new HttpServerExample(args.length > 0 ? Integer.parseInt(args[0]) : 8080);
        app.listen();

        CheckpointHooks hooks = CheckpointHooks.global();
        hooks.register(CheckpointHook.named("http-server").timeout(Duration.ofSeconds(5))
                .beforeCheckpoint(ctx -> app.close())
                .afterRestore(ctx -> {
                    if (ctx.outcome() != Outcome.SUPERSEDED) {
                        app.listen();
                    }
                })
                .build());
        // Priority 10 > 0: after restore this runs before http-server listens again, so no
        // request of a restored copy is served with the original's random state or id.
        hooks.register(CheckpointHook.named("identity").priority(10)
                .afterRestore(ctx -> {
                    if (ctx.outcome() == Outcome.RESTORED) {
                        app.random = new SecureRandom();
                        app.instanceId = UUID.randomUUID().toString();
                        app.restoreCount = ctx.restoreCount();
                    }
                })
                .build());
        hooks.start(); // daemon threads: without an agent it logs once and waits quietly

        // Keep main alive: while the server is closed for a checkpoint, no other non-daemon
        // thread exists, and the JVM would otherwise end right there.
        new CountDownLatch(1).await();
    }

    private synchronized void listen() throws IOException {
        if (server != null) {
            return;
        }
        HttpServer s = HttpServer.create(new InetSocketAddress(port), 0);
        s.createContext("/", exchange -> {
            byte[] token = new byte[8];
            random.nextBytes(token);
            byte[] body = ("instance " + instanceId + ", restores " + restoreCount + ", token "
                    + HexFormat.of().formatHex(token) + "\n").getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        s.start();
        server = s;
        System.err.println("listening on port " + port);
    }

    private synchronized void close() {
        if (server != null) {
            server.stop(0); // closes the listener and every connection now (JDK 17's stop(n) always waits n s)
            server = null;
            System.err.println("stopped listening for the checkpoint");
        }
    }
}
