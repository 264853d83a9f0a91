package dev.cryo.hooks;

import java.util.logging.Logger;

/** The library's java.util.logging logger, {@code dev.cryo.hooks}. */
final class Log {
    static final Logger LOGGER = Logger.getLogger("dev.cryo.hooks");

    private Log() {}
}
