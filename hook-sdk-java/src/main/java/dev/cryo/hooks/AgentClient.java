package dev.cryo.hooks;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;

/**
 * The protocol's state machine (§2): connects, says hello, answers pings, runs hooks for
 * {@code prepare} and the outcomes, reconnects with backoff.
 *
 * <p>Threads, all daemons: the <em>client</em> thread connects and reads (and handles every
 * message, so the session is only changed there); the <em>dispatch</em> thread runs the hook
 * sequences one after another (each hook on a worker thread of its own), so the client thread
 * keeps answering pings meanwhile; the <em>watchdog</em> thread closes connections that went
 * silent.
 */
final class AgentClient {
    static final String PATH = "/v1/hooks";
    /** connect + upgrade, and from there to the agent's answer to hello. */
    private static final long CONNECT_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(10);
    private static final long DEFAULT_HEARTBEAT_MS = 10_000;
    private static final long CLOSE_WAIT_MS = 2_000;
    private static final long MAX_PENDING_STEP_NANOS = TimeUnit.SECONDS.toNanos(15);
    /** Answer this much before the prepare deadline (at most 1/20 of the time given). */
    private static final long ANSWER_MARGIN_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final Options options;
    private final HookRegistry registry;
    private final Session session;
    private final HookRunner runner;
    private final List<ClientListener> listeners = new CopyOnWriteArrayList<>();
    private final ThreadPoolExecutor dispatcher;
    /** Hook sequences queued or running; only the client thread increments it. */
    private final AtomicInteger busy = new AtomicInteger();
    /** Pre-checkpoint hooks queued or running; post-restore hooks alone do not refuse a prepare. */
    private final AtomicInteger preparing = new AtomicInteger();
    private final Backoff backoff = new Backoff();
    /** Whether the outcome of the last checkpoint was {@link Outcome#SUPERSEDED}. */
    private volatile boolean superseded;

    private final Object lock = new Object();
    private int generation;
    private boolean running;
    private Thread clientThread;
    private ScheduledExecutorService watchdog;
    private SocketChannel connecting;
    private long connectingSince;
    private volatile Link current;

    // client-thread state
    private boolean loggedNoSocket;
    private boolean loggedUnsupportedVersion;
    private boolean loggedUnexpected;
    private boolean failing;
    private boolean slowRetry;

    /** One connection and what the client knows about it. */
    private static final class Link {
        final WebSocketConnection ws;
        volatile boolean answered;
        volatile long silenceLimitNanos = CONNECT_LIMIT_NANOS;

        Link(WebSocketConnection ws) {
            this.ws = ws;
        }
    }

    /** A prepare being handled; {@code answerByNanos} is on the {@link System#nanoTime()} clock. */
    private record Prepare(String id, String checkpointId, String reason, Instant deadline, long answerByNanos) {}

    AgentClient(Options options, HookRegistry registry) {
        this.options = options;
        this.registry = registry;
        this.session = new Session(options.podUid());
        this.runner = new HookRunner(options.defaultHookTimeout());
        this.dispatcher = new ThreadPoolExecutor(1, 1, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(),
                Threads.factory("cryo-hooks-dispatch"));
        this.dispatcher.allowCoreThreadTimeOut(true);
    }

    Session session() {
        return session;
    }

    boolean superseded() {
        return superseded;
    }

    Registration addListener(ClientListener listener) {
        listeners.add(listener);
        return () -> listeners.remove(listener);
    }

    void start() {
        synchronized (lock) {
            if (running) {
                return;
            }
            running = true;
            int gen = ++generation;
            clientThread = Threads.daemon("cryo-hooks-client", () -> runLoop(gen));
            watchdog = Executors.newSingleThreadScheduledExecutor(Threads.factory("cryo-hooks-watchdog"));
            watchdog.scheduleWithFixedDelay(this::checkSilence, 250, 250, TimeUnit.MILLISECONDS);
            clientThread.start();
        }
    }

    void stop() {
        Thread thread;
        Link link;
        SocketChannel channel;
        ScheduledExecutorService timer;
        synchronized (lock) {
            if (!running) {
                return;
            }
            running = false;
            thread = clientThread;
            link = current;
            channel = connecting;
            timer = watchdog;
            clientThread = null;
            watchdog = null;
        }
        timer.shutdownNow();
        if (channel != null) {
            closeQuietly(channel);
        }
        if (link != null) {
            link.ws.close(WebSocketConnection.NORMAL, "stop");
            link.ws.awaitClosed(CLOSE_WAIT_MS);
        }
        thread.interrupt(); // wakes it from a backoff sleep
        if (thread != Thread.currentThread()) {
            try {
                thread.join(CLOSE_WAIT_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private boolean active(int gen) {
        synchronized (lock) {
            return running && generation == gen;
        }
    }

    // ---- the client thread ----

    private void runLoop(int gen) {
        while (active(gen)) {
            try {
                checkOutcomeTimeout();
                connectOnce(gen);
                checkOutcomeTimeout();
            } catch (Throwable t) {
                Log.LOGGER.log(loggedUnexpected ? Level.FINE : Level.WARNING,
                        "unexpected error in the hook client; carrying on", t);
                loggedUnexpected = true;
            }
            if (!active(gen)) {
                break;
            }
            try {
                Thread.sleep(backoff.next(session.hasPending(), slowRetry));
            } catch (InterruptedException e) {
                // stop() wakes us; the loop condition decides
            }
        }
    }

    private void connectOnce(int gen) {
        SocketChannel channel;
        try {
            channel = WebSocketConnection.openChannel();
        } catch (IOException | UnsupportedOperationException e) {
            connectFailed(e instanceof IOException ? (IOException) e : new IOException(e));
            return;
        }
        synchronized (lock) {
            if (!running || generation != gen) {
                closeQuietly(channel);
                return;
            }
            connecting = channel;
            connectingSince = System.nanoTime();
        }
        WebSocketConnection ws;
        try {
            ws = WebSocketConnection.connect(channel, options.socketPath(), PATH);
        } catch (IOException e) {
            connectFailed(e);
            return;
        } finally {
            synchronized (lock) {
                connecting = null;
            }
        }
        Link link = new Link(ws);
        synchronized (lock) {
            if (!running || generation != gen) {
                ws.abort();
                return;
            }
            current = link;
        }
        try {
            if (send(ws, hello())) {
                String text;
                while ((text = ws.receive()) != null) {
                    try {
                        handle(link, text);
                    } catch (RuntimeException e) {
                        Log.LOGGER.log(Level.WARNING, "error handling a message from the agent", e);
                    }
                }
            }
        } finally {
            synchronized (lock) {
                if (current == link) {
                    current = null;
                }
            }
            ws.abort();
            int code = ws.closeCode();
            String reason = ws.closeReason();
            Level level = code == WebSocketConnection.NORMAL && "checkpoint".equals(reason) ? Level.FINE : Level.INFO;
            Log.LOGGER.log(level, "disconnected from the agent (" + code + (reason.isEmpty() ? "" : " " + reason) + ")");
            for (ClientListener l : listeners) {
                try {
                    l.disconnected(code, reason);
                } catch (Throwable t) {
                    Log.LOGGER.log(Level.WARNING, "a ClientListener threw", t);
                }
            }
        }
    }

    private void connectFailed(IOException e) {
        if (session.hasPending()) {
            // expected: the pod's socket is closed or gone while the checkpoint is dumped
            Log.LOGGER.fine("cannot connect to the agent while checkpoint " + session.pendingCheckpoint()
                    + " is pending: " + e.getMessage());
        } else if (!Files.exists(options.socketPath())) {
            if (!loggedNoSocket) {
                loggedNoSocket = true;
                Log.LOGGER.info("no agent socket at " + options.socketPath() + " (is the pod annotated"
                        + " cryo.dev/hooks: enabled?): checkpoint hooks stay idle; retrying quietly");
            } else {
                Log.LOGGER.fine("no agent socket at " + options.socketPath());
            }
        } else if (!failing) {
            Log.LOGGER.info("cannot connect to the agent at " + options.socketPath() + ": " + e.getMessage() + "; retrying");
        } else {
            Log.LOGGER.fine("cannot connect to the agent: " + e.getMessage());
        }
        failing = true;
    }

    private Map<String, Object> hello() {
        return Messages.hello(Session.SESSION_ID, ProcessHandle.current().pid(), options.containerName(),
                session.podUid(), session.restoreCount(), session.pendingCheckpoint());
    }

    private void handle(Link link, String text) {
        Map<String, Object> message;
        try {
            message = Json.parseObject(text);
        } catch (Json.ParseException e) {
            badMessage(link, "not a JSON object: " + e.getMessage());
            return;
        }
        Object type = message.get("type");
        if (!(type instanceof String)) {
            badMessage(link, "a message without a string type");
            return;
        }
        switch ((String) type) {
            case "welcome":
            case "resumed":
            case "restored":
                onAnswer(link, (String) type, message);
                break;
            case "prepare":
                onPrepare(link, message);
                break;
            case "ping":
                send(link.ws, Messages.pong(message.get("id")));
                break;
            case "pong":
                break;
            case "error":
                onError(message);
                break;
            default:
                Log.LOGGER.fine("ignoring a message of unknown type " + type);
        }
    }

    private void badMessage(Link link, String why) {
        Log.LOGGER.warning("the agent sent " + why + "; closing the connection");
        send(link.ws, Messages.error("bad-message", why));
        link.ws.close(4002, "bad message");
    }

    private void onAnswer(Link link, String kind, Map<String, Object> message) {
        link.answered = true;
        Object interval = message.get("heartbeatIntervalMs");
        long heartbeatMs = interval instanceof Number && ((Number) interval).doubleValue() > 0
                ? (long) Math.ceil(((Number) interval).doubleValue()) : DEFAULT_HEARTBEAT_MS;
        link.silenceLimitNanos = TimeUnit.MILLISECONDS.toNanos(Math.min(heartbeatMs, Long.MAX_VALUE / 3) * 3);
        backoff.reset();
        slowRetry = false;
        failing = false;
        session.update(kind, message);
        Log.LOGGER.info("connected to the Cryo agent: " + kind + " (pod " + message.get("namespace") + "/"
                + message.get("podName") + ", session " + Session.SESSION_ID + ")");
        for (ClientListener l : listeners) {
            try {
                l.connected(kind, message);
            } catch (Throwable t) {
                Log.LOGGER.log(Level.WARNING, "a ClientListener threw", t);
            }
        }
        HookContext prepared = session.takePending();
        if (kind.equals("welcome")) {
            if (prepared != null) {
                // Not what a version-1 agent does (a hello with pendingCheckpoint gets resumed or
                // restored); treat it as resumed with outcome "unknown", i.e. done.
                Log.LOGGER.warning("welcome while checkpoint " + prepared.checkpointId()
                        + " was pending: taking it as resumed (outcome unknown)");
                runAfterRestore(prepared.withOutcome(Outcome.RESUMED, session.restoreCount()), true);
            }
            return;
        }
        if (kind.equals("resumed")) {
            if (prepared == null) {
                Log.LOGGER.fine("resumed for a checkpoint whose outcome was already settled");
                return;
            }
            runAfterRestore(prepared.withOutcome(outcomeOf(prepared, message.get("outcome")), session.restoreCount()), true);
            return;
        }
        String checkpointId = message.get("checkpointId") instanceof String ? (String) message.get("checkpointId") : null;
        HookContext base = prepared != null && (checkpointId == null || checkpointId.equals(prepared.checkpointId()))
                ? prepared
                : new HookContext(checkpointId, null, null, 0, null);
        runAfterRestore(base.withOutcome(Outcome.RESTORED, session.restoreCount()), prepared != null);
    }

    /** §3: what post-restore hooks are told after {@code resumed}; a value this client does not know means stay quiet. */
    private static Outcome outcomeOf(HookContext prepared, Object outcome) {
        if ("done".equals(outcome) || "unknown".equals(outcome)) {
            return Outcome.RESUMED;
        }
        if ("aborted".equals(outcome)) {
            return Outcome.ABORTED;
        }
        if (!"superseded".equals(outcome)) {
            Log.LOGGER.warning("the agent sent the outcome " + Json.write(outcome) + " for checkpoint "
                    + prepared.checkpointId() + ", which this client does not know: taking it as superseded"
                    + " (staying quiet) rather than resuming");
        }
        return Outcome.SUPERSEDED;
    }

    private void onPrepare(Link link, Map<String, Object> message) {
        long receivedNanos = System.nanoTime();
        Instant receivedAt = Instant.now();
        if (!(message.get("id") instanceof String)) {
            Log.LOGGER.warning("ignoring a prepare without an id");
            return;
        }
        String id = (String) message.get("id");
        String checkpointId = message.get("checkpointId") instanceof String ? (String) message.get("checkpointId") : null;
        String reason = message.get("reason") instanceof String ? (String) message.get("reason") : "";

        Instant deadline = null;
        long budgetNanos = -1;
        Object timeoutMs = message.get("timeoutMs");
        if (timeoutMs instanceof Number && Double.isFinite(((Number) timeoutMs).doubleValue())) {
            budgetNanos = Math.max(0, (long) (((Number) timeoutMs).doubleValue() * 1e6));
            deadline = receivedAt.plusNanos(budgetNanos);
        } else if (message.get("deadline") instanceof String) {
            try {
                deadline = OffsetDateTime.parse((String) message.get("deadline")).toInstant();
                budgetNanos = Math.max(0, Duration.between(receivedAt, deadline).toNanos());
            } catch (DateTimeParseException | ArithmeticException e) {
                Log.LOGGER.warning("prepare with an unreadable deadline: " + message.get("deadline"));
            }
        }
        long answerBy = budgetNanos < 0 ? HookRunner.NO_DEADLINE
                : receivedNanos + budgetNanos - Math.min(ANSWER_MARGIN_NANOS, budgetNanos / 20);

        // A prepare right after a restore waits for the post-restore hooks: the dispatcher runs jobs in order.
        if (preparing.get() > 0) {
            Log.LOGGER.warning("prepare for " + checkpointId + " while another checkpoint is being prepared: answering failed");
            Map<String, Object> failed = Messages.failed(id, checkpointId, 0,
                    List.of(new HookError("", "another checkpoint is in progress", false)));
            if (send(link.ws, failed)) {
                answered("failed", failed);
            }
            return;
        }
        Log.LOGGER.info("checkpoint " + checkpointId + " requested" + (reason.isEmpty() ? "" : " (" + reason + ")")
                + ": running pre-checkpoint hooks");
        busy.incrementAndGet();
        preparing.incrementAndGet();
        registry.freeze();
        Prepare prepare = new Prepare(id, checkpointId, reason, deadline, answerBy);
        dispatch(() -> runCheckpoint(link, prepare));
    }

    private void onError(Map<String, Object> message) {
        String code = message.get("code") instanceof String ? (String) message.get("code") : "";
        String text = message.get("message") instanceof String ? (String) message.get("message") : "";
        if (code.equals("unsupported-version")) {
            slowRetry = true;
            if (!loggedUnsupportedVersion) {
                loggedUnsupportedVersion = true;
                Log.LOGGER.warning("the agent does not speak protocol " + Messages.PROTOCOL + " (" + text
                        + "; it supports " + message.get("supportedProtocols") + "): retrying every "
                        + Backoff.SLOW_MS / 1000 + " s");
            }
        } else {
            Log.LOGGER.warning("the agent reported an error: " + code + ": " + text);
        }
        for (ClientListener l : listeners) {
            try {
                l.protocolError(code, text, message);
            } catch (Throwable t) {
                Log.LOGGER.log(Level.WARNING, "a ClientListener threw", t);
            }
        }
    }

    /** §2.6: no outcome long after ready; decide by the hostname. Client thread only. */
    private void checkOutcomeTimeout() {
        Session.Expired expired = session.takeExpired(options.outcomeTimeout().toNanos(), MAX_PENDING_STEP_NANOS);
        if (expired == null) {
            return;
        }
        String now = hostname();
        boolean changed = now != null && expired.hostnameAtPrepare() != null && !now.equals(expired.hostnameAtPrepare());
        Outcome outcome = changed ? Outcome.RESTORED : Outcome.ABORTED;
        Log.LOGGER.warning("no outcome for checkpoint " + expired.prepared().checkpointId() + " within "
                + options.outcomeTimeout().toSeconds() + " s of ready; the hostname "
                + (changed ? "changed" : "did not change") + ": running post-restore hooks as " + outcome.wireName());
        long restoreCount = session.restoreCount() + (changed ? 1 : 0);
        runAfterRestore(expired.prepared().withOutcome(outcome, restoreCount), true);
    }

    /** Queues the post-restore hooks; {@code frozen}: the registry was frozen by the prepare. */
    private void runAfterRestore(HookContext context, boolean frozen) {
        if (!frozen) {
            registry.freeze();
        }
        busy.incrementAndGet();
        dispatch(() -> {
            try {
                afterRestore(context);
            } finally {
                registry.thaw();
                busy.decrementAndGet();
            }
        });
    }

    // ---- the dispatch thread ----

    private void dispatch(Runnable job) {
        dispatcher.execute(() -> {
            try {
                job.run();
            } catch (Throwable t) {
                Log.LOGGER.log(Level.WARNING, "unexpected error while running hooks", t);
            }
        });
    }

    private void runCheckpoint(Link link, Prepare prepare) {
        boolean awaitingOutcome = false;
        try {
            String hostname = hostname();
            HookContext context = new HookContext(prepare.checkpointId(), prepare.reason(), prepare.deadline(),
                    session.restoreCount(), null);
            long started = System.nanoTime();
            List<HookError> errors = runner.run(registry.beforeCheckpointOrder(), HookRunner.Phase.BEFORE, context,
                    prepare.answerByNanos());
            double hookMs = (System.nanoTime() - started) / 1e6;
            WebSocketConnection ws = link.ws;
            if (errors.isEmpty()) {
                session.setPending(context, hostname);
                Map<String, Object> ready = Messages.ready(prepare.id(), prepare.checkpointId(), hookMs);
                if (send(ws, ready)) {
                    awaitingOutcome = true;
                    answered("ready", ready);
                    ws.close(WebSocketConnection.NORMAL, "checkpoint");
                    if (!ws.awaitClosed(CLOSE_WAIT_MS)) {
                        Log.LOGGER.warning("the agent did not complete the close handshake; closed the socket");
                    }
                    Log.LOGGER.info(String.format("ready for checkpoint %s (hooks took %.1f ms); disconnected until"
                            + " the outcome is known", prepare.checkpointId(), hookMs));
                    return;
                }
                session.takePending();
                Log.LOGGER.warning("the connection to the agent was lost during the pre-checkpoint hooks: checkpoint "
                        + prepare.checkpointId() + " is aborted");
            } else {
                Map<String, Object> failed = Messages.failed(prepare.id(), prepare.checkpointId(), hookMs, errors);
                if (send(ws, failed)) {
                    answered("failed", failed);
                }
                Log.LOGGER.warning("checkpoint " + prepare.checkpointId() + " aborted: " + errors.size()
                        + " pre-checkpoint hook(s) failed");
            }
            afterRestore(context.withOutcome(Outcome.ABORTED, session.restoreCount()));
        } finally {
            if (!awaitingOutcome) {
                registry.thaw();
            }
            preparing.decrementAndGet();
            busy.decrementAndGet();
        }
    }

    private void afterRestore(HookContext context) {
        superseded = context.outcome() == Outcome.SUPERSEDED;
        if (superseded) {
            Log.LOGGER.info("superseded: a copy carries on from checkpoint " + context.checkpointId()
                    + " elsewhere; this process must stay quiet until it is stopped");
        }
        List<HookError> errors = runner.run(registry.afterRestoreOrder(), HookRunner.Phase.AFTER, context,
                HookRunner.NO_DEADLINE);
        Log.LOGGER.info("post-restore hooks ran (" + context.outcome().wireName() + ", checkpoint "
                + context.checkpointId() + ")" + (errors.isEmpty() ? "" : ": " + errors.size() + " failed"));
    }

    private void answered(String type, Map<String, Object> message) {
        for (ClientListener l : listeners) {
            try {
                l.answered(type, message);
            } catch (Throwable t) {
                Log.LOGGER.log(Level.WARNING, "a ClientListener threw", t);
            }
        }
    }

    // ---- the watchdog thread ----

    private void checkSilence() {
        try {
            long now = System.nanoTime();
            Link link = current;
            if (link != null && !link.ws.isClosed()) {
                long limit = link.answered ? link.silenceLimitNanos : CONNECT_LIMIT_NANOS;
                if (now - link.ws.lastReceivedNanos() > limit) {
                    Log.LOGGER.warning("nothing heard from the agent for " + TimeUnit.NANOSECONDS.toMillis(limit)
                            + " ms: reconnecting");
                    link.ws.abort();
                }
            }
            SocketChannel channel;
            long since;
            synchronized (lock) {
                channel = connecting;
                since = connectingSince;
            }
            if (channel != null && now - since > CONNECT_LIMIT_NANOS) {
                Log.LOGGER.warning("connecting to the agent takes too long: giving up on this attempt");
                closeQuietly(channel);
            }
        } catch (Throwable t) {
            Log.LOGGER.log(Level.WARNING, "unexpected error in the hook watchdog", t);
        }
    }

    // ---- helpers ----

    private static boolean send(WebSocketConnection ws, Map<String, Object> message) {
        try {
            ws.sendText(Json.write(message));
            return true;
        } catch (IOException e) {
            Log.LOGGER.fine("could not send " + message.get("type") + ": " + e.getMessage());
            return false;
        }
    }

    private String hostname() {
        try {
            return options.hostname().get();
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to do
        }
    }
}
