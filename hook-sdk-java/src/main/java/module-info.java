/**
 * Cryo's checkpoint hooks for a JVM: the client of the node agent's hook protocol. The contract
 * (order, timeouts, failures, outcomes) is in the package documentation of {@link dev.cryo.hooks}.
 */
module dev.cryo.hooks {
    // Logging only (the logger dev.cryo.hooks); no java.util.logging type is part of the API.
    requires java.logging;

    exports dev.cryo.hooks;
}
