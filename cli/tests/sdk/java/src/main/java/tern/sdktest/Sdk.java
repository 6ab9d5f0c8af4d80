package tern.sdktest;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientConfigurationBuilder;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.StaticSessionCredentialsProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;

/** What the scenarios of this program share: the client set-up against Tern and small helpers. */
final class Sdk {
    private Sdk() {}

    /**
     * The SDK's service provider, with the SDK's log going to the console at WARN level so that a
     * failure shows why. Call before anything else touches the SDK.
     */
    static ClientServiceProvider provider() {
        System.setProperty("mq.consoleAppender.enabled", "true");
        System.setProperty("rocketmq.log.level", "warn");
        return ClientServiceProvider.loadService();
    }

    /**
     * Settings for every client of {@code endpoint}: the client's default transport, TLS (without
     * checking the certificate), which Tern serves next to plaintext on the same port; requests
     * signed with TERN_SDK_ACCESS_KEY and TERN_SDK_SECRET_KEY when set.
     */
    static ClientConfiguration config(String endpoint) {
        ClientConfigurationBuilder builder = ClientConfiguration.newBuilder()
                .setEndpoints(endpoint)
                .setRequestTimeout(Duration.ofSeconds(10));
        String accessKey = System.getenv("TERN_SDK_ACCESS_KEY");
        if (accessKey != null && !accessKey.isEmpty()) {
            String secretKey = System.getenv().getOrDefault("TERN_SDK_SECRET_KEY", "");
            builder.setCredentialProvider(
                    new StaticSessionCredentialsProvider(accessKey, secretKey));
        }
        return builder.build();
    }

    /** A started producer of {@code topic}. */
    static Producer producer(
            ClientServiceProvider provider, ClientConfiguration config, String topic)
            throws ClientException {
        return provider.newProducerBuilder()
                .setClientConfiguration(config)
                .setTopics(topic)
                .build();
    }

    /** A started SimpleConsumer of {@code group} on {@code topic}, long polling 5 s per receive. */
    static SimpleConsumer simpleConsumer(
            ClientServiceProvider provider,
            ClientConfiguration config,
            String group,
            String topic,
            FilterExpression filter)
            throws ClientException {
        return provider.newSimpleConsumerBuilder()
                .setClientConfiguration(config)
                .setConsumerGroup(group)
                .setAwaitDuration(Duration.ofSeconds(5))
                .setSubscriptionExpressions(Collections.singletonMap(topic, filter))
                .build();
    }

    /**
     * One receive; a failed one is reported on stderr and, after half a second, counts as having
     * received nothing (the callers loop until a deadline).
     */
    static List<MessageView> receive(SimpleConsumer consumer, int max, Duration invisible)
            throws InterruptedException {
        try {
            return consumer.receive(max, invisible);
        } catch (ClientException e) {
            System.err.println("receive: " + e);
            Thread.sleep(500);
            return Collections.emptyList();
        }
    }

    /** The body as UTF-8 text. */
    static String body(MessageView view) {
        return StandardCharsets.UTF_8.decode(view.getBody()).toString();
    }

    /** Says why on stderr and exits 1. */
    static void fail(String message) {
        System.err.println(message);
        System.exit(1);
    }
}
