package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.IntPredicate;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;

/**
 * SQL92 filters with the official Java client.
 *
 * <p>Arguments: ENDPOINT TOPIC N (run as {@code java -cp sdktest.jar tern.sdktest.Sql}). The
 * producer sends N messages with a tag ({@code even} or {@code odd}) and the user properties
 * {@code n} (the index) and {@code color}; SimpleConsumers of their own groups subscribed with
 * {@code FilterExpression(sql, FilterExpressionType.SQL92)} must each receive exactly the
 * matching messages, once each, and a malformed expression must be refused with a status naming
 * it.
 *
 * <p>Prints {@code sql filters ok <bool> refused <bool>} and exits 0 only if both hold.
 */
public final class Sql {
    private static final Duration DEADLINE = Duration.ofSeconds(30);
    private static final String BAD = "n >= AND";

    private Sql() {}

    private static String color(int i) {
        return i % 3 == 0 ? "red" : "blue";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            Sdk.fail("usage: Sql ENDPOINT TOPIC N");
        }
        String endpoint = args[0];
        String topic = args[1];
        int n = Integer.parseInt(args[2]);
        ClientServiceProvider provider = Sdk.provider();
        ClientConfiguration config = Sdk.config(endpoint);

        try (Producer producer = Sdk.producer(provider, config, topic)) {
            for (int i = 0; i < n; i++) {
                String body = "java-" + i;
                Message message =
                        provider.newMessageBuilder()
                                .setTopic(topic)
                                .setTag(i % 2 == 0 ? "even" : "odd")
                                .addProperty("n", Integer.toString(i))
                                .addProperty("color", color(i))
                                .setBody(body.getBytes(StandardCharsets.UTF_8))
                                .build();
                if (producer.send(message).getMessageId() == null) {
                    Sdk.fail("send " + i + ": no message id");
                }
            }
        }
        System.out.println("sent " + n);

        boolean ok =
                receiveAll(
                        provider,
                        config,
                        "java-sql-red",
                        topic,
                        "n >= 10 AND color = 'red'",
                        n,
                        i -> i >= 10 && color(i).equals("red"));
        ok &=
                receiveAll(
                        provider,
                        config,
                        "java-sql-tags",
                        topic,
                        "TAGS = 'odd' AND n NOT BETWEEN 5 AND 25 OR n IN ('2', '4')",
                        n,
                        i -> (i % 2 == 1 && !(5 <= i && i <= 25)) || i == 2 || i == 4);
        boolean refused = badFilterRefused(provider, config, topic);
        System.out.println("sql filters ok " + ok + " refused " + refused);
        System.out.flush();
        // The SDK leaves non-daemon threads behind; exit explicitly.
        System.exit(ok && refused ? 0 : 1);
    }

    /**
     * Receives and acks with a consumer of {@code group} filtering by {@code sql} until all the
     * matching messages arrived (or the deadline passed), then once more to see that nothing else
     * comes; true if exactly the messages {@code matches} selects arrived, once each.
     */
    private static boolean receiveAll(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String group,
            String topic,
            String sql,
            int n,
            IntPredicate matches)
            throws Exception {
        Set<String> want = new TreeSet<>();
        for (int i = 0; i < n; i++) {
            if (matches.test(i)) {
                want.add("java-" + i);
            }
        }
        Map<String, Integer> got = new HashMap<>();
        try (SimpleConsumer consumer =
                Sdk.simpleConsumer(
                        provider,
                        config,
                        group,
                        topic,
                        new FilterExpression(sql, FilterExpressionType.SQL92))) {
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            boolean last = false;
            while (!last) {
                last = got.size() >= want.size() || System.nanoTime() >= deadline;
                for (MessageView view : Sdk.receive(consumer, 32, Duration.ofSeconds(20))) {
                    got.merge(Sdk.body(view), 1, Integer::sum);
                    consumer.ack(view);
                }
            }
        }
        Set<String> extra = new TreeSet<>(got.keySet());
        extra.removeAll(want);
        Set<String> missing = new TreeSet<>(want);
        missing.removeAll(got.keySet());
        Set<String> duplicates = new TreeSet<>();
        got.forEach(
                (body, count) -> {
                    if (count > 1) {
                        duplicates.add(body);
                    }
                });
        System.out.println(
                group
                        + ": '"
                        + sql
                        + "' received "
                        + got.size()
                        + " of "
                        + want.size()
                        + " extra "
                        + extra
                        + " missing "
                        + missing
                        + " duplicates "
                        + duplicates);
        return want.size() > 0 && extra.isEmpty() && missing.isEmpty() && duplicates.isEmpty();
    }

    /** A consumer with a malformed expression: its receive must fail with a status naming it. */
    private static boolean badFilterRefused(
            ClientServiceProvider provider, ClientConfiguration config, String topic)
            throws Exception {
        try (SimpleConsumer consumer =
                Sdk.simpleConsumer(
                        provider,
                        config,
                        "java-sql-bad",
                        topic,
                        new FilterExpression(BAD, FilterExpressionType.SQL92))) {
            consumer.receive(32, Duration.ofSeconds(20));
        } catch (ClientException e) {
            String text = e.toString();
            System.out.println("bad filter: " + text);
            return text.contains("column") && text.contains(BAD);
        }
        System.out.println("bad filter: no error");
        return false;
    }
}
