import static org.codelibs.opensearch.runner.OpenSearchRunner.newConfigs;

import java.io.IOException;
import java.util.concurrent.CountDownLatch;

import org.codelibs.opensearch.runner.OpenSearchRunner;

/**
 * Runs a one-node OpenSearch cluster on loopback until the JVM receives SIGTERM or SIGINT.
 *
 * <p>Usage: {@code StackOpenSearch BASE_PATH HTTP_PORT TRANSPORT_PORT}. Data, config and
 * node logs live under BASE_PATH, so a restart with the same path keeps every index.
 * A shutdown hook closes the node on either signal.
 */
public final class StackOpenSearch {

    private StackOpenSearch() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: StackOpenSearch BASE_PATH HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        String basePath = args[0];
        int httpPort = parsePort(args[1]);
        int transportPort = parsePort(args[2]);

        OpenSearchRunner runner = new OpenSearchRunner();
        // By default the runner scans for a free HTTP port only up to 9299 and
        // rejects higher ones. -1 turns the scan off, so HTTP_PORT is used as given.
        runner.setMaxHttpPort(-1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> close(runner), "stack-opensearch-shutdown"));

        try {
            build(runner, basePath, httpPort, transportPort);
        } catch (RuntimeException e) {
            // Threads of a half-started node could keep the JVM alive. Exiting
            // lets stack.sh see the failure at once instead of at its timeout.
            System.err.println("OpenSearch node failed to start: " + e);
            e.printStackTrace();
            System.exit(1);
        }

        System.out.println("OpenSearch node started: http://127.0.0.1:" + httpPort
                + ", transport 127.0.0.1:" + transportPort + ", base path " + basePath);
        new CountDownLatch(1).await();
    }

    private static void build(OpenSearchRunner runner, String basePath, int httpPort, int transportPort) {
        // The runner writes its settings with putIfAbsent, so the values set here win.
        runner.onBuild((nodeNumber, settings) -> {
            settings.put("network.host", "127.0.0.1");
            settings.put("http.port", httpPort);
            settings.put("transport.port", transportPort);
            settings.put("discovery.type", "single-node");
            // The runner's default roles omit ingest, which pipelines need.
            settings.putList("node.roles", "cluster_manager", "data", "ingest");
            // CI disks can be nearly full, and the flood-stage watermark would
            // then make every index read-only and fail unrelated tests.
            settings.put("cluster.routing.allocation.disk.threshold_enabled", false);
        }).build(newConfigs()
                .basePath(basePath)
                .numOfNode(1)
                .baseHttpPort(httpPort - 1) // the runner adds the node number (1) to this base
                .clusterName("commerce-stack")
                .printOnFailure());
    }

    private static int parsePort(String value) {
        int port = Integer.parseInt(value);
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("invalid port " + value + ": expected 1-65535");
        }
        return port;
    }

    private static void close(OpenSearchRunner runner) {
        if (runner.isClosed()) {
            return;
        }
        try {
            runner.close();
            System.out.println("OpenSearch node stopped");
        } catch (IOException e) {
            System.err.println("OpenSearch node failed to close: " + e);
        }
    }
}
