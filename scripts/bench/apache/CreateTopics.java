// Creates many topics on Apache RocketMQ in one JVM, for scripts/bench-compare
// (mqadmin updateTopic starts a JVM per topic, about a second each).
//
// Usage (Java 11 or newer runs the source file directly):
//   java -cp "$APACHE_LIB/*" scripts/bench/apache/CreateTopics.java \
//       NAMESRV PREFIX COUNT QUEUES
// creates PREFIX-0 .. PREFIX-<COUNT-1> (the names `tern bench --topics COUNT
// --topic PREFIX` uses), each with QUEUES read and write queues, on every
// master broker the name server knows, in batches of 500 topics per request
// (the admin API of rocketmq-tools, createAndUpdateTopicConfigList: the broker
// stores and registers a batch at once). Then it waits until the name server
// has a route for the last topic. Prints one line of progress per batch and a
// last line `created COUNT topics in S s`; exits 1 with the reason on failure.
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.remoting.protocol.body.ClusterInfo;
import org.apache.rocketmq.remoting.protocol.route.BrokerData;
import org.apache.rocketmq.remoting.protocol.route.TopicRouteData;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

public class CreateTopics {
    private static final int BATCH = 500;
    private static final long ROUTE_WAIT_MS = 60_000;

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            fail("usage: CreateTopics NAMESRV PREFIX COUNT QUEUES");
        }
        String namesrv = args[0];
        String prefix = args[1];
        int count = positive(args[2], "COUNT");
        int queues = positive(args[3], "QUEUES");

        DefaultMQAdminExt admin = new DefaultMQAdminExt(30_000);
        admin.setNamesrvAddr(namesrv);
        admin.setInstanceName("bench-create-topics-" + ProcessHandle.current().pid());
        admin.start();
        int rc = 0;
        try {
            long t0 = System.nanoTime();
            Set<String> masters = masters(admin.examineBrokerClusterInfo());
            if (masters.isEmpty()) {
                fail("no master broker registered at the name server " + namesrv);
            }
            for (int first = 0; first < count; first += BATCH) {
                List<TopicConfig> batch = new ArrayList<>();
                for (int i = first; i < Math.min(count, first + BATCH); i++) {
                    // Permission 6: read and write, as mqadmin updateTopic.
                    batch.add(new TopicConfig(prefix + "-" + i, queues, queues, 6));
                }
                for (String broker : masters) {
                    admin.createAndUpdateTopicConfigList(broker, batch);
                }
                System.out.printf("created %d of %d topics on %s%n",
                        first + batch.size(), count, masters);
            }
            String last = prefix + "-" + (count - 1);
            long deadline = System.currentTimeMillis() + ROUTE_WAIT_MS;
            String why = "none yet";
            while (true) {
                try {
                    TopicRouteData route = admin.examineTopicRouteInfo(last);
                    if (route != null && !route.getQueueDatas().isEmpty()) {
                        break;
                    }
                } catch (Exception e) {
                    why = e.toString();
                }
                if (System.currentTimeMillis() > deadline) {
                    fail("the name server has no route for " + last + " after "
                            + ROUTE_WAIT_MS / 1000 + " s: " + why);
                }
                Thread.sleep(200);
            }
            System.out.printf("created %d topics in %.1f s%n", count,
                    (System.nanoTime() - t0) / 1e9);
        } catch (Exception e) {
            System.err.println("CreateTopics: " + e);
            rc = 1;
        } finally {
            admin.shutdown();
        }
        System.exit(rc);
    }

    /** Addresses of the master (id 0) broker of every broker name. */
    private static Set<String> masters(ClusterInfo info) {
        Set<String> out = new TreeSet<>();
        for (BrokerData b : info.getBrokerAddrTable().values()) {
            String addr = b.getBrokerAddrs().get(0L);
            if (addr != null) {
                out.add(addr);
            }
        }
        return out;
    }

    private static int positive(String text, String what) {
        try {
            int n = Integer.parseInt(text);
            if (n > 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        fail(what + " must be a positive number, not " + text);
        return 0;
    }

    private static void fail(String why) {
        System.err.println("CreateTopics: " + why);
        System.exit(1);
    }
}
