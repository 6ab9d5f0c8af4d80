package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;

/**
 * FIFO order per message group with the official Java client.
 *
 * <p>Arguments: ENDPOINT TOPIC GROUP GROUPS PER_GROUP (run as {@code java -cp sdktest.jar
 * tern.sdktest.Fifo}).
 *
 * <ol>
 *   <li>The producer sends PER_GROUP messages to each of GROUPS message groups (body {@code
 *       <group>:<seq>}), one send per message group in flight at a time, so each group's send
 *       order is its sequence order.
 *   <li>Two SimpleConsumers of the consumer group GROUP receive concurrently, each on its own
 *       thread, and leave about 5% of the messages unacknowledged the first time they see them
 *       (those come back after the invisible duration). Checked for every received message: it
 *       is the first not yet acknowledged message of its group. At the end each group's
 *       acknowledged sequence must be exactly 0..PER_GROUP-1, and a last receive must get
 *       nothing.
 * </ol>
 *
 * <p>Prints {@code fifo ok <bool>} and exits 0 only if all of that holds.
 */
public final class Fifo {
    private static final Duration INVISIBLE = Duration.ofSeconds(3);
    private static final Duration DEADLINE = Duration.ofSeconds(40);

    private Fifo() {}

    /** Whether the consumers leave (group, seq) unacknowledged the first time they get it. */
    private static boolean retried(int g, int seq) {
        return (g * 131 + seq * 17) % 20 == 0;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            Sdk.fail("usage: Fifo ENDPOINT TOPIC GROUP GROUPS PER_GROUP");
        }
        String endpoint = args[0];
        String topic = args[1];
        String group = args[2];
        int groups = Integer.parseInt(args[3]);
        int perGroup = Integer.parseInt(args[4]);
        ClientServiceProvider provider = Sdk.provider();
        ClientConfiguration config = Sdk.config(endpoint);

        send(provider, config, topic, groups, perGroup);

        Checker checker = new Checker(groups, perGroup);
        List<String> errors = new CopyOnWriteArrayList<>();
        long started = System.nanoTime();
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < 2; c++) {
            Thread thread =
                    new Thread(() -> consume(provider, config, topic, group, checker, errors));
            thread.start();
            threads.add(thread);
        }
        for (Thread thread : threads) {
            thread.join();
        }
        long elapsedMs = (System.nanoTime() - started) / 1_000_000;

        // Nothing more may come: everything was acknowledged.
        List<String> extra = new ArrayList<>();
        try (SimpleConsumer late = consumer(provider, config, topic, group)) {
            for (MessageView view : Sdk.receive(late, 32, INVISIBLE)) {
                extra.add(Sdk.body(view));
            }
        }

        List<Integer> wrong = new ArrayList<>();
        int wantUnacked = 0;
        for (int g = 0; g < groups; g++) {
            List<Integer> acked = checker.acked.get(g);
            boolean inOrder = acked.size() == perGroup;
            for (int i = 0; inOrder && i < perGroup; i++) {
                inOrder = acked.get(i) == i;
            }
            if (!inOrder) {
                wrong.add(g);
            }
            for (int seq = 0; seq < perGroup; seq++) {
                wantUnacked += retried(g, seq) ? 1 : 0;
            }
        }
        boolean ok =
                checker.violations.isEmpty()
                        && wrong.isEmpty()
                        && errors.isEmpty()
                        && extra.isEmpty()
                        && wantUnacked > 0
                        && checker.leftUnacked.get() == wantUnacked
                        && checker.redelivered.get() >= wantUnacked;
        System.out.println(
                "consumed in "
                        + elapsedMs
                        + " ms: received "
                        + checker.received.get()
                        + ", left unacked "
                        + checker.leftUnacked.get()
                        + " of "
                        + wantUnacked
                        + ", redelivered "
                        + checker.redelivered.get()
                        + ", violations "
                        + checker.violations.size()
                        + " "
                        + first(checker.violations, 5)
                        + ", groups out of order or short "
                        + first(wrong, 5)
                        + ", errors "
                        + first(errors, 3)
                        + ", extra "
                        + first(extra, 5));
        System.out.println("fifo ok " + ok);
        System.out.flush();
        // The SDK leaves non-daemon threads behind; exit explicitly.
        System.exit(ok ? 0 : 1);
    }

    private static <T> List<T> first(List<T> list, int n) {
        return list.subList(0, Math.min(n, list.size()));
    }

    /** Sends round by round: sequence number seq of every group at once, then the next. */
    private static void send(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String topic,
            int groups,
            int perGroup)
            throws Exception {
        long started = System.nanoTime();
        try (Producer producer = Sdk.producer(provider, config, topic)) {
            for (int seq = 0; seq < perGroup; seq++) {
                List<CompletableFuture<SendReceipt>> round = new ArrayList<>();
                for (int g = 0; g < groups; g++) {
                    String body = g + ":" + seq;
                    Message message =
                            provider.newMessageBuilder()
                                    .setTopic(topic)
                                    .setTag("fifo")
                                    .setKeys(g + "-" + seq)
                                    .setMessageGroup("group-" + g)
                                    .setBody(body.getBytes(StandardCharsets.UTF_8))
                                    .build();
                    round.add(producer.sendAsync(message));
                }
                for (CompletableFuture<SendReceipt> receipt : round) {
                    if (receipt.get().getMessageId() == null) {
                        Sdk.fail("seq " + seq + ": a send returned no message id");
                    }
                }
            }
        }
        System.out.println(
                "sent "
                        + groups * perGroup
                        + " in "
                        + (System.nanoTime() - started) / 1_000_000
                        + " ms");
    }

    private static SimpleConsumer consumer(
            ClientServiceProvider provider, ClientConfiguration config, String topic, String group)
            throws ClientException {
        FilterExpression all = new FilterExpression("*", FilterExpressionType.TAG);
        return Sdk.simpleConsumer(provider, config, group, topic, all);
    }

    /** One consumer's loop, until every group is acknowledged or the deadline passed. */
    private static void consume(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String topic,
            String group,
            Checker checker,
            List<String> errors) {
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        try (SimpleConsumer consumer = consumer(provider, config, topic, group)) {
            while (!checker.done() && System.nanoTime() < deadline) {
                for (MessageView view : Sdk.receive(consumer, 32, INVISIBLE)) {
                    checker.handle(consumer, view);
                }
            }
        } catch (Exception e) {
            errors.add(e.toString());
        }
    }

    /**
     * What the consumers saw, per message group. A group's messages are handled under the group's
     * lock, from the check through the ack: a consumer that receives the next message of a group
     * checks it only after the previous one's ack was recorded.
     */
    private static final class Checker {
        private final int perGroup;
        private final Object[] locks;
        /** Per group: the sequence number of the first message not yet acknowledged. */
        private final AtomicIntegerArray expected;
        /** Per group: the acknowledged sequence numbers, in the order of their acks. */
        final List<List<Integer>> acked = new ArrayList<>();
        final List<String> violations = new CopyOnWriteArrayList<>();
        final AtomicInteger received = new AtomicInteger();
        final AtomicInteger redelivered = new AtomicInteger();
        final AtomicInteger leftUnacked = new AtomicInteger();

        Checker(int groups, int perGroup) {
            this.perGroup = perGroup;
            this.locks = new Object[groups];
            this.expected = new AtomicIntegerArray(groups);
            for (int g = 0; g < groups; g++) {
                locks[g] = new Object();
                acked.add(new ArrayList<>());
            }
        }

        boolean done() {
            for (int g = 0; g < expected.length(); g++) {
                if (expected.get(g) < perGroup) {
                    return false;
                }
            }
            return true;
        }

        void handle(SimpleConsumer consumer, MessageView view) throws ClientException {
            String body = Sdk.body(view);
            String[] parts = body.split(":");
            int g = Integer.parseInt(parts[0]);
            int seq = Integer.parseInt(parts[1]);
            synchronized (locks[g]) {
                received.incrementAndGet();
                int attempt = view.getDeliveryAttempt();
                if (attempt > 1) {
                    redelivered.incrementAndGet();
                }
                String messageGroup = view.getMessageGroup().orElse("");
                if (!messageGroup.equals("group-" + g)) {
                    violations.add(body + " has message group '" + messageGroup + "'");
                }
                if (seq != expected.get(g)) {
                    violations.add(
                            "group "
                                    + g
                                    + ": got "
                                    + seq
                                    + " (attempt "
                                    + attempt
                                    + ") while "
                                    + expected.get(g)
                                    + " is not acked");
                    return;
                }
                if (attempt == 1 && retried(g, seq)) {
                    leftUnacked.incrementAndGet();
                    return;
                }
                consumer.ack(view);
                acked.get(g).add(seq);
                expected.set(g, seq + 1);
            }
        }
    }
}
