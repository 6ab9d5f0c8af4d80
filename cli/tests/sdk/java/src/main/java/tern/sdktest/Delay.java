package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;

/**
 * Delayed messages with the official Java client.
 *
 * <p>Arguments: ENDPOINT TOPIC GROUP N PRECISION_MS (run as {@code java -cp sdktest.jar
 * tern.sdktest.Delay}). The producer sends N messages with delivery timestamps 3, 4 or 5 s ahead;
 * a SimpleConsumer receives and acks them, then receives once more to see that nothing else
 * comes. Each message must arrive exactly once, not before its delivery time, at most
 * PRECISION_MS (plus 2 s of slack for a loaded machine) after it, and carry the delivery timestamp
 * it was sent with.
 *
 * <p>Prints {@code received <n> duplicates <d> missing <m> wrong <w>} and exits 0 only if d, m
 * and w are 0 and n is N.
 */
public final class Delay {
    private static final long SLACK_MS = 2000;
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    private Delay() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            Sdk.fail("usage: Delay ENDPOINT TOPIC GROUP N PRECISION_MS");
        }
        String endpoint = args[0];
        String topic = args[1];
        String group = args[2];
        int n = Integer.parseInt(args[3]);
        long precision = Long.parseLong(args[4]);
        ClientServiceProvider provider = Sdk.provider();
        ClientConfiguration config = Sdk.config(endpoint);

        // body -> delivery time, in ms since the epoch
        Map<String, Long> due = new HashMap<>();
        try (Producer producer = Sdk.producer(provider, config, topic)) {
            for (int i = 0; i < n; i++) {
                long at = System.currentTimeMillis() + 3000 + (i % 3) * 1000;
                String body = i + ":" + at;
                SendReceipt receipt =
                        producer.send(
                                provider.newMessageBuilder()
                                        .setTopic(topic)
                                        .setTag("later")
                                        .setDeliveryTimestamp(at)
                                        .setBody(body.getBytes(StandardCharsets.UTF_8))
                                        .build());
                if (receipt.getMessageId() == null) {
                    Sdk.fail(body + ": no message id");
                }
                due.put(body, at);
            }
        }
        System.out.println("sent " + due.size());

        Map<String, Integer> got = new HashMap<>();
        int wrong = 0;
        try (SimpleConsumer consumer =
                Sdk.simpleConsumer(
                        provider,
                        config,
                        group,
                        topic,
                        new FilterExpression("*", FilterExpressionType.TAG))) {
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            // Until all arrived, then once more: a duplicate would show.
            boolean last = false;
            while (!last) {
                last = got.size() >= n || System.nanoTime() >= deadline;
                for (MessageView view : Sdk.receive(consumer, 32, Duration.ofSeconds(20))) {
                    long now = System.currentTimeMillis();
                    String body = Sdk.body(view);
                    Long at = due.get(body);
                    got.merge(body, 1, Integer::sum);
                    Optional<Long> timestamp = view.getDeliveryTimestamp();
                    if (at == null
                            || now < at
                            || now > at + precision + SLACK_MS
                            || !timestamp.equals(Optional.of(at))) {
                        wrong++;
                        System.err.println(
                                body
                                        + ": due "
                                        + at
                                        + ", received "
                                        + now
                                        + ", delivery timestamp "
                                        + timestamp);
                    }
                    consumer.ack(view);
                }
            }
        }
        int duplicates = 0;
        for (int count : got.values()) {
            if (count > 1) {
                duplicates++;
            }
        }
        int missing = 0;
        for (String body : due.keySet()) {
            if (!got.containsKey(body)) {
                missing++;
            }
        }
        System.out.println(
                "received "
                        + got.size()
                        + " duplicates "
                        + duplicates
                        + " missing "
                        + missing
                        + " wrong "
                        + wrong);
        System.out.flush();
        // The SDK leaves non-daemon threads behind; exit explicitly.
        System.exit(duplicates == 0 && missing == 0 && wrong == 0 ? 0 : 1);
    }
}
