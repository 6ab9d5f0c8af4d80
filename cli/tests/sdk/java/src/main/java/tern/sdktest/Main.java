package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;

/**
 * Drives the official Apache RocketMQ 5 Java client against Tern.
 *
 * <p>Arguments: MODE ENDPOINT TOPIC GROUP N, where MODE is
 *
 * <ul>
 *   <li>{@code simple}: the producer sends N messages, a SimpleConsumer receives and acks them;
 *   <li>{@code push}: the producer sends N messages, a PushConsumer consumes them.
 * </ul>
 *
 * <p>Prints {@code received <n> duplicates <d> missing <m>} and exits 0 only if every message
 * arrived exactly once with the tag and key it was sent with.
 */
public final class Main {
    private static final String TAG = "TagA";
    private static final Duration DEADLINE = Duration.ofSeconds(90);

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            Sdk.fail("usage: Main simple|push ENDPOINT TOPIC GROUP N");
        }
        String mode = args[0];
        String endpoint = args[1];
        String topic = args[2];
        String group = args[3];
        int n = Integer.parseInt(args[4]);

        ClientServiceProvider provider = Sdk.provider();
        ClientConfiguration config = Sdk.config(endpoint);

        Set<String> sent = send(provider, config, topic, n);
        System.out.println("sent " + sent.size());

        Map<String, Integer> got;
        switch (mode) {
            case "simple":
                got = consumeSimple(provider, config, topic, group, n);
                break;
            case "push":
                got = consumePush(provider, config, topic, group, n);
                break;
            default:
                Sdk.fail("unknown mode " + mode);
                return;
        }

        int duplicates = 0;
        for (int count : got.values()) {
            if (count > 1) {
                duplicates++;
            }
        }
        int missing = 0;
        for (String body : sent) {
            if (!got.containsKey(body)) {
                missing++;
            }
        }
        System.out.println(
                "received " + got.size() + " duplicates " + duplicates + " missing " + missing);
        System.out.flush();
        // The SDK leaves non-daemon threads behind; exit explicitly.
        System.exit(duplicates == 0 && missing == 0 ? 0 : 1);
    }

    private static Set<String> send(
            ClientServiceProvider provider, ClientConfiguration config, String topic, int n)
            throws Exception {
        Set<String> sent = new HashSet<>();
        try (Producer producer = Sdk.producer(provider, config, topic)) {
            for (int i = 0; i < n; i++) {
                String body = "java-" + i;
                Message message =
                        provider.newMessageBuilder()
                                .setTopic(topic)
                                .setTag(TAG)
                                .setKeys("key-" + i)
                                .setBody(body.getBytes(StandardCharsets.UTF_8))
                                .build();
                SendReceipt receipt = producer.send(message);
                if (receipt.getMessageId() == null
                        || receipt.getMessageId().toString().isEmpty()) {
                    Sdk.fail("send " + i + ": no message id");
                }
                sent.add(body);
            }
        }
        return sent;
    }

    /** Checks what the consumer saw besides the body; returns the body. */
    private static String check(MessageView view) {
        String body = Sdk.body(view);
        String index = body.substring(body.indexOf('-') + 1);
        if (!view.getTag().map(TAG::equals).orElse(false)) {
            Sdk.fail(body + ": tag " + view.getTag());
        }
        if (!view.getKeys().contains("key-" + index)) {
            Sdk.fail(body + ": keys " + view.getKeys());
        }
        if (view.getDeliveryAttempt() < 1) {
            Sdk.fail(body + ": delivery attempt " + view.getDeliveryAttempt());
        }
        return body;
    }

    private static Map<String, Integer> consumeSimple(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String topic,
            String group,
            int n)
            throws Exception {
        Map<String, Integer> got = new HashMap<>();
        try (SimpleConsumer consumer =
                Sdk.simpleConsumer(
                        provider,
                        config,
                        group,
                        topic,
                        new FilterExpression(TAG, FilterExpressionType.TAG))) {
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            while (got.size() < n && System.nanoTime() < deadline) {
                for (MessageView view : Sdk.receive(consumer, 32, Duration.ofSeconds(15))) {
                    got.merge(check(view), 1, Integer::sum);
                    consumer.ack(view);
                }
            }
        }
        return got;
    }

    private static Map<String, Integer> consumePush(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String topic,
            String group,
            int n)
            throws Exception {
        Map<String, Integer> got = new ConcurrentHashMap<>();
        AtomicInteger calls = new AtomicInteger();
        // Not closed: close() waits out the consumer's long poll in flight
        // (the 20 s the broker's settings give), and main exits the JVM anyway.
        PushConsumer consumer =
                provider.newPushConsumerBuilder()
                        .setClientConfiguration(config)
                        .setConsumerGroup(group)
                        .setSubscriptionExpressions(
                                Collections.singletonMap(
                                        topic, new FilterExpression(TAG, FilterExpressionType.TAG)))
                        .setMessageListener(
                                view -> {
                                    got.merge(check(view), 1, Integer::sum);
                                    calls.incrementAndGet();
                                    return ConsumeResult.SUCCESS;
                                })
                        .build();
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (got.size() < n && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        System.out.println(
                "push consumer saw "
                        + got.size()
                        + " messages in "
                        + (System.nanoTime() - deadline + DEADLINE.toNanos()) / 1_000_000
                        + " ms");
        // Linger so that a duplicate delivery would be seen.
        Thread.sleep(2000);
        System.out.println("listener calls " + calls.get());
        return new HashMap<>(got);
    }
}
