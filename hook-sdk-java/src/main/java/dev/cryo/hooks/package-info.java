/**
 * Pre-checkpoint and post-restore hooks for a JVM that Cryo checkpoints: a client of the node
 * agent's hook protocol ({@code docs/hook-protocol.md} in the Cryo repository) and a registry of
 * hooks modelled on CRaC's {@code org.crac}.
 *
 * <p>An application registers {@link dev.cryo.hooks.CheckpointHook}s with
 * {@link dev.cryo.hooks.CheckpointHooks#global()} and calls
 * {@link dev.cryo.hooks.CheckpointHooks#start()}. When the agent is about to checkpoint the pod it
 * sends {@code prepare}: the client runs the pre-checkpoint hooks, answers, and once the outcome is
 * known runs the post-restore hooks with it ({@link dev.cryo.hooks.HookContext#outcome()}). The
 * checkpoint itself is taken outside the JVM (the kubelet calls CRIU); the JDK takes no part, so
 * the hooks must close whatever CRIU cannot dump. What follows is the contract the client keeps.
 *
 * <h2>The client never gets in the application's way</h2>
 * <ul>
 * <li>{@code start()} returns at once and never throws because of the agent. Without an agent
 * socket the client logs one line and keeps retrying quietly.</li>
 * <li>All of its threads are daemons, the hooks' own included, so it never keeps the JVM alive:
 * not while waiting for an outcome, not after {@link dev.cryo.hooks.Outcome#SUPERSEDED}. An
 * application whose last non-daemon thread stops in a {@code beforeCheckpoint} ends there; keep a
 * thread of your own alive.</li>
 * <li>Nothing a hook throws reaches the application: failures are reported to the agent (before a
 * checkpoint) or logged (after it). The same holds for {@link dev.cryo.hooks.ClientListener}s.</li>
 * <li>Registrations are held strongly until {@link dev.cryo.hooks.Registration#close()} (CRaC's
 * global context holds resources weakly).</li>
 * </ul>
 *
 * <h2>Order</h2>
 * <ul>
 * <li>Before a checkpoint: every hook with a {@code beforeCheckpoint} action, by
 * {@linkplain dev.cryo.hooks.CheckpointHook.Builder#priority(int) priority} ascending (a higher
 * priority runs later), then in reverse registration order.</li>
 * <li>After it: every hook with an {@code afterRestore} action, in exactly the reverse order:
 * priority descending, then registration order. With equal priorities this is CRaC's order.</li>
 * <li>One hook at a time, each on a new daemon thread of its own (never the thread that registered
 * it); the next starts when the previous one has returned, thrown or timed out. One sequence at a
 * time as well: the pre-checkpoint hooks of a {@code prepare} that arrives while post-restore hooks
 * still run wait for them, and the wait counts against the new deadline.</li>
 * <li>A hook registered or unregistered during a checkpoint (from the {@code prepare} until the
 * post-restore hooks have finished) is added or removed once it is over: the same hooks run on both
 * sides of one checkpoint.</li>
 * </ul>
 *
 * <h2>Timeouts</h2>
 * <ul>
 * <li>Each hook has a timeout per phase: its own
 * ({@link dev.cryo.hooks.CheckpointHook.Builder#timeout(java.time.Duration)}) or else
 * {@link dev.cryo.hooks.Options#defaultHookTimeout()} (10 s).</li>
 * <li>Before a checkpoint it is also capped by the {@code prepare}'s deadline
 * ({@link dev.cryo.hooks.HookContext#deadline()}), less a margin of at most 50 ms for the answer
 * to arrive in time. A hook whose turn comes after that is not started; it counts as timed out
 * ({@code not run: the prepare deadline had passed}).</li>
 * <li>After a checkpoint only the hook's own timeout applies.</li>
 * <li>A hook that times out is interrupted and abandoned: it is not stopped, and keeps running on
 * its thread until it notices the interrupt. Long waits in hooks should honour interruption.</li>
 * </ul>
 *
 * <h2>Failures</h2>
 * <ul>
 * <li>Every hook runs, whatever the hooks before it did (before a checkpoint, as long as the
 * deadline allows: see above).</li>
 * <li>A pre-checkpoint hook that throws (anything, {@code Error}s included) or times out aborts the
 * checkpoint, for the whole pod. The client answers {@code failed} with one entry per failed hook
 * (its name, the exception's message or else its {@code toString()}, and whether it timed out),
 * stays connected, and at once runs the post-restore hooks with
 * {@link dev.cryo.hooks.Outcome#ABORTED}. So does a lost connection before the client could
 * answer.</li>
 * <li>Post-restore hooks run whether or not their own {@code beforeCheckpoint} ran, failed or
 * timed out (as CRaC notifies every resource of the restore). An {@code afterRestore} must
 * therefore cope with a {@code beforeCheckpoint} that never happened, or stopped half-way.</li>
 * <li>A post-restore hook that throws or times out is logged (WARNING) and changes nothing else:
 * the outcome stands, the other hooks run, nothing is reported to the agent.</li>
 * <li>A {@code prepare} that arrives while the client still handles another one (its
 * pre-checkpoint hooks, or the {@code ABORTED} post-restore hooks after them) is answered
 * {@code failed} ({@code another checkpoint is in progress}) without running any hook.</li>
 * </ul>
 *
 * <h2>Outcomes</h2>
 * After a successful preparation the client answers {@code ready}, closes its connection (no
 * socket to the agent may exist during the dump) and reconnects every 20–50 ms until the agent
 * tells it what happened. The post-restore hooks then get one of:
 * <ul>
 * <li>{@link dev.cryo.hooks.Outcome#RESUMED}: the checkpoint was taken (or the agent no longer
 * knows; taken as done) and this is the original, carrying on.</li>
 * <li>{@link dev.cryo.hooks.Outcome#RESTORED}: this process is a copy started from the checkpoint,
 * perhaps on another node, perhaps the hundredth: it shares the original's memory, so renew random
 * state, ids, tokens and leases. A copy of a process that did not take part in the checkpoint runs
 * its post-restore hooks too, with no pre-checkpoint hooks before them and a {@code null} reason
 * and deadline.</li>
 * <li>{@link dev.cryo.hooks.Outcome#ABORTED}: no checkpoint was taken (a hook failed, in this or
 * another process of the pod; the agent gave up; or the dump failed).</li>
 * <li>{@link dev.cryo.hooks.Outcome#SUPERSEDED}: the checkpoint was taken to migrate the pod and a
 * copy carries on from it elsewhere. The original must stay quiet until it is stopped (SIGTERM):
 * keep listeners closed, take no new work, finish nothing with side effects.
 * {@link dev.cryo.hooks.CheckpointHooks#isSuperseded()} tells code the hooks do not reach. An
 * outcome this client does not know (from a later agent) is taken as {@code SUPERSEDED}, with a
 * warning: staying quiet is the safe mistake.</li>
 * </ul>
 * When no outcome arrives within {@link dev.cryo.hooks.Options#outcomeTimeout()} (120 s) of
 * {@code ready}, the agent is taken to be gone and the post-restore hooks run anyway: as
 * {@code RESTORED} if the pod's hostname ({@code /etc/hostname}) changed since the {@code prepare},
 * as {@code ABORTED} otherwise. After {@link dev.cryo.hooks.CheckpointHooks#stop()} nothing is
 * heard until the next {@code start()}; hooks already running carry on.
 *
 * <h2>Compared with CRaC</h2>
 * Order, every-hook-runs and the abort-then-restore on failure are CRaC's global context's rules.
 * Cryo adds priorities (from OpenJ9's {@code CRIUSupport}), timeouts, and an outcome that tells
 * the original from a copy; it holds hooks strongly, and nothing in the JVM requests a checkpoint:
 * a {@code Checkpoint} resource in Kubernetes does.
 *
 * <p>{@link dev.cryo.hooks.Json} is public because the conformance app, and tests, read and write
 * the protocol's JSON with it.
 */
package dev.cryo.hooks;
