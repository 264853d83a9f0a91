package dev.cryo.hooks;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;

/** Daemon threads whose uncaught exceptions are logged, never handed to the application's handler. */
final class Threads {
    private static final Thread.UncaughtExceptionHandler LOG_IT = (thread, error) ->
            Log.LOGGER.log(Level.WARNING, "unexpected error in " + thread.getName(), error);

    private Threads() {}

    static Thread daemon(String name, Runnable body) {
        Thread thread = new Thread(body, name);
        thread.setDaemon(true);
        thread.setUncaughtExceptionHandler(LOG_IT);
        return thread;
    }

    static ThreadFactory factory(String prefix) {
        AtomicInteger count = new AtomicInteger();
        return body -> daemon(prefix + "-" + count.incrementAndGet(), body);
    }
}
