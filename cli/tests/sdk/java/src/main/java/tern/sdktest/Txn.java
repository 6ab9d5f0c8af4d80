package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
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
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * Transactional messages with the official Java client.
 *
 * <p>Arguments: ENDPOINT TOPIC GROUP (run as {@code java -cp sdktest.jar tern.sdktest.Txn}). A
 * producer with a TransactionChecker commits one transaction, rolls one back and leaves one
 * orphaned (neither); the broker must ask the checker about the orphan, which commits it. A
 * SimpleConsumer must then receive the committed one, the orphan and a later committed marker,
 * and (after a few more seconds) never the rolled-back one.
 *
 * <p>Prints {@code java txn ok <bool> committed <bool> rolled_back_absent <bool> orphan_checked
 * <bool>} and exits 0 only if all hold.
 */
public final class Txn {
    private Txn() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            Sdk.fail("usage: Txn ENDPOINT TOPIC GROUP");
        }
        String endpoint = args[0];
        String topic = args[1];
        String group = args[2];

        ClientServiceProvider provider = Sdk.provider();
        ClientConfiguration config = Sdk.config(endpoint);
        List<String> asked = new CopyOnWriteArrayList<>();
        Producer producer =
                provider.newProducerBuilder()
                        .setClientConfiguration(config)
                        .setTopics(topic)
                        .setTransactionChecker(
                                view -> {
                                    String body = Sdk.body(view);
                                    asked.add(body);
                                    System.out.println(
                                            "checker asked about "
                                                    + body
                                                    + " ("
                                                    + view.getMessageId()
                                                    + ")");
                                    return body.startsWith("orphan-")
                                            ? TransactionResolution.COMMIT
                                            : TransactionResolution.ROLLBACK;
                                })
                        .build();
        half(provider, producer, topic, "commit-java").commit();
        half(provider, producer, topic, "rollback-java").rollback();
        half(provider, producer, topic, "orphan-java");
        half(provider, producer, topic, "marker-java").commit();

        Map<String, Integer> seen = new ConcurrentHashMap<>();
        try (SimpleConsumer consumer =
                Sdk.simpleConsumer(
                        provider,
                        config,
                        group,
                        topic,
                        new FilterExpression("*", FilterExpressionType.TAG))) {
            receive(
                    consumer,
                    seen,
                    () ->
                            seen.containsKey("commit-java")
                                    && seen.containsKey("orphan-java")
                                    && seen.containsKey("marker-java"),
                    Duration.ofSeconds(60));
            // The rolled-back one must not come, not even a few seconds later.
            receive(consumer, seen, () -> false, Duration.ofSeconds(6));
        }
        boolean committed =
                seen.getOrDefault("commit-java", 0) == 1 && seen.getOrDefault("marker-java", 0) == 1;
        boolean absent = !seen.containsKey("rollback-java");
        boolean orphan = asked.contains("orphan-java") && seen.getOrDefault("orphan-java", 0) == 1;
        boolean othersAsked = asked.stream().anyMatch(b -> !b.startsWith("orphan-"));
        boolean ok = committed && absent && orphan && !othersAsked;
        System.out.println("seen " + seen + " checker asked " + asked);
        System.out.println(
                "java txn ok "
                        + ok
                        + " committed "
                        + committed
                        + " rolled_back_absent "
                        + absent
                        + " orphan_checked "
                        + orphan);
        System.out.flush();
        // The SDK leaves non-daemon threads behind; exit explicitly.
        System.exit(ok ? 0 : 1);
    }

    private static Transaction half(
            ClientServiceProvider provider, Producer producer, String topic, String body)
            throws ClientException {
        Message message =
                provider.newMessageBuilder()
                        .setTopic(topic)
                        .setTag("txn")
                        .setBody(body.getBytes(StandardCharsets.UTF_8))
                        .build();
        Transaction tx = producer.beginTransaction();
        SendReceipt receipt = producer.send(message, tx);
        if (receipt.getMessageId() == null) {
            Sdk.fail(body + ": no message id");
        }
        return tx;
    }

    private static void receive(
            SimpleConsumer consumer,
            Map<String, Integer> seen,
            java.util.function.BooleanSupplier done,
            Duration within)
            throws Exception {
        long deadline = System.nanoTime() + within.toNanos();
        while (!done.getAsBoolean() && System.nanoTime() < deadline) {
            for (MessageView view : Sdk.receive(consumer, 16, Duration.ofSeconds(15))) {
                String body = Sdk.body(view);
                seen.merge(body, 1, Integer::sum);
                System.out.println("received " + body);
                consumer.ack(view);
            }
        }
    }
}
