//! Spot checks of the RocketMQ v2 wire format: encode with the generated
//! prost types and read the raw bytes back with an independent reader, so a
//! wrong field number, wire type or enum value in our .proto files shows up
//! as a failure here (and, the other way round, hand-made bytes decode into
//! the right fields).
//!
//! The expected numbers are those of the public apache.rocketmq.v2
//! definitions (protocol release v2.1.2).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;

use common::{Value, fields, len_field, numbers, only, put_key, put_len, put_varint, varint_field};
use prost::Message as _;
use tern_protocol::v2;

fn resource(name: &str) -> v2::Resource {
    v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    }
}

fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn secs(seconds: i64) -> prost_types::Duration {
    prost_types::Duration { seconds, nanos: 0 }
}

fn sample_message() -> v2::Message {
    v2::Message {
        topic: Some(resource("orders")),
        user_properties: HashMap::from([("k".to_owned(), "v".to_owned())]),
        system_properties: Some(v2::SystemProperties {
            tag: Some("tagA".to_owned()),
            keys: vec!["key1".to_owned()],
            message_id: "MSGID".to_owned(),
            body_digest: Some(v2::Digest {
                r#type: v2::DigestType::Md5 as i32,
                checksum: "ABC".to_owned(),
            }),
            message_type: v2::MessageType::Fifo as i32,
            born_timestamp: Some(ts(1)),
            delivery_timestamp: Some(ts(7)),
            receipt_handle: Some("RH".to_owned()),
            queue_id: 3,
            queue_offset: Some(42),
            delivery_attempt: Some(2),
            message_group: Some("g1".to_owned()),
            ..Default::default()
        }),
        body: b"hello".to_vec(),
    }
}

#[test]
fn send_message_request_messages_is_field_1() {
    let req = v2::SendMessageRequest {
        messages: vec![sample_message(), sample_message()],
    };
    let bytes = req.encode_to_vec();
    let top = fields(&bytes);
    assert_eq!(top.len(), 2);
    for (number, value) in &top {
        assert_eq!(*number, 1);
        let Value::Len(inner) = value else {
            panic!("messages must be length-delimited")
        };
        assert_eq!(
            v2::Message::decode(inner.as_slice()).unwrap(),
            sample_message()
        );
    }
}

#[test]
fn message_fields() {
    let bytes = sample_message().encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2, 3, 4]);

    // topic = 1: Resource { resource_namespace = 1, name = 2 }
    let topic = len_field(&bytes, 1);
    assert_eq!(len_field(&topic, 2), b"orders");

    // user_properties = 2: a map entry { key = 1, value = 2 }
    let entry = len_field(&bytes, 2);
    assert_eq!(len_field(&entry, 1), b"k");
    assert_eq!(len_field(&entry, 2), b"v");

    // body = 4
    assert_eq!(len_field(&bytes, 4), b"hello");
}

#[test]
fn system_properties_fields() {
    let bytes = sample_message().encode_to_vec();
    let sp = len_field(&bytes, 3);

    assert_eq!(len_field(&sp, 1), b"tagA"); // tag
    assert_eq!(len_field(&sp, 2), b"key1"); // keys
    assert_eq!(len_field(&sp, 3), b"MSGID"); // message_id
    let digest = len_field(&sp, 4); // body_digest
    assert_eq!(varint_field(&digest, 1), 2); // DigestType.MD5
    assert_eq!(len_field(&digest, 2), b"ABC");
    assert_eq!(varint_field(&sp, 6), 2); // message_type = FIFO
    let born = len_field(&sp, 7); // born_timestamp
    assert_eq!(varint_field(&born, 1), 1);
    let delivery = len_field(&sp, 11); // delivery_timestamp
    assert_eq!(varint_field(&delivery, 1), 7);
    assert_eq!(len_field(&sp, 12), b"RH"); // receipt_handle
    assert_eq!(varint_field(&sp, 13), 3); // queue_id
    assert_eq!(varint_field(&sp, 14), 42); // queue_offset
    assert_eq!(varint_field(&sp, 16), 2); // delivery_attempt
    assert_eq!(len_field(&sp, 17), b"g1"); // message_group
}

#[test]
fn system_properties_decode_from_hand_made_bytes() {
    let mut sp = Vec::new();
    put_len(&mut sp, 3, b"ID-1"); // message_id
    put_len(&mut sp, 12, b"handle"); // receipt_handle
    put_key(&mut sp, 16, 0); // delivery_attempt
    put_varint(&mut sp, 5);
    put_len(&mut sp, 17, b"grp"); // message_group
    put_len(&mut sp, 21, b"lite"); // lite_topic
    put_key(&mut sp, 22, 0); // priority
    put_varint(&mut sp, 9);

    let decoded = v2::SystemProperties::decode(sp.as_slice()).unwrap();
    assert_eq!(decoded.message_id, "ID-1");
    assert_eq!(decoded.receipt_handle.as_deref(), Some("handle"));
    assert_eq!(decoded.delivery_attempt, Some(5));
    assert_eq!(decoded.message_group.as_deref(), Some("grp"));
    assert_eq!(decoded.lite_topic.as_deref(), Some("lite"));
    assert_eq!(decoded.priority, Some(9));
}

#[test]
fn proto3_optional_fields_keep_presence() {
    // A present-but-zero optional field is still sent; an absent one is not.
    let sp = v2::SystemProperties {
        delivery_attempt: Some(0),
        ..Default::default()
    };
    let bytes = sp.encode_to_vec();
    assert_eq!(fields(&bytes), vec![(16, Value::Varint(0))]);
    let back = v2::SystemProperties::decode(bytes.as_slice()).unwrap();
    assert_eq!(back.delivery_attempt, Some(0));
    assert_eq!(back.queue_offset, None);
}

#[test]
fn receive_message_request_fields() {
    let req = v2::ReceiveMessageRequest {
        group: Some(resource("G")),
        message_queue: Some(v2::MessageQueue {
            topic: Some(resource("T")),
            id: 1,
            permission: v2::Permission::ReadWrite as i32,
            broker: None,
            accept_message_types: vec![v2::MessageType::Normal as i32],
        }),
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: "*".to_owned(),
        }),
        batch_size: 32,
        invisible_duration: Some(secs(30)),
        auto_renew: true,
        long_polling_timeout: Some(secs(20)),
        attempt_id: Some("attempt".to_owned()),
    };
    let bytes = req.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(len_field(&len_field(&bytes, 1), 2), b"G");
    let mq = len_field(&bytes, 2);
    assert_eq!(varint_field(&mq, 2), 1); // id
    assert_eq!(varint_field(&mq, 3), 4); // permission READ_WRITE
    let filter = len_field(&bytes, 3);
    assert_eq!(varint_field(&filter, 1), 1); // TAG
    assert_eq!(varint_field(&bytes, 4), 32); // batch_size
    assert_eq!(varint_field(&len_field(&bytes, 5), 1), 30); // invisible_duration
    assert_eq!(varint_field(&bytes, 6), 1); // auto_renew
    assert_eq!(varint_field(&len_field(&bytes, 7), 1), 20); // long_polling_timeout
    assert_eq!(len_field(&bytes, 8), b"attempt"); // attempt_id
}

#[test]
fn receive_message_response_oneof_tags() {
    use v2::receive_message_response::Content;

    let status = v2::ReceiveMessageResponse {
        content: Some(Content::Status(v2::Status {
            code: v2::Code::MessageNotFound as i32,
            message: String::new(),
        })),
    };
    let bytes = status.encode_to_vec();
    assert_eq!(varint_field(&len_field(&bytes, 1), 1), 40401);

    let message = v2::ReceiveMessageResponse {
        content: Some(Content::Message(sample_message())),
    };
    assert_eq!(numbers(&message.encode_to_vec()), vec![2]);

    let delivery = v2::ReceiveMessageResponse {
        content: Some(Content::DeliveryTimestamp(ts(5))),
    };
    assert_eq!(numbers(&delivery.encode_to_vec()), vec![3]);
}

#[test]
fn pull_message_response_oneof_tags() {
    use v2::pull_message_response::Content;

    let next = v2::PullMessageResponse {
        content: Some(Content::NextOffset(77)),
    };
    assert_eq!(fields(&next.encode_to_vec()), vec![(3, Value::Varint(77))]);
}

#[test]
fn send_result_entry_fields() {
    let entry = v2::SendResultEntry {
        status: Some(v2::Status {
            code: v2::Code::Ok as i32,
            message: "OK".to_owned(),
        }),
        message_id: "M".to_owned(),
        transaction_id: "TX".to_owned(),
        offset: 9,
        recall_handle: "RC".to_owned(),
    };
    let bytes = entry.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2, 3, 4, 5]);
    assert_eq!(varint_field(&len_field(&bytes, 1), 1), 20000);
    assert_eq!(len_field(&bytes, 2), b"M");
    assert_eq!(len_field(&bytes, 3), b"TX");
    assert_eq!(varint_field(&bytes, 4), 9);
    assert_eq!(len_field(&bytes, 5), b"RC");
}

#[test]
fn telemetry_command_fields() {
    use v2::telemetry_command::Command;

    let settings = v2::TelemetryCommand {
        status: Some(v2::Status {
            code: v2::Code::Ok as i32,
            message: String::new(),
        }),
        command: Some(Command::Settings(v2::Settings {
            request_timeout: Some(secs(3)),
            pub_sub: Some(v2::settings::PubSub::Publishing(v2::Publishing {
                topics: vec![],
                max_body_size: 4 * 1024 * 1024,
                validate_message_type: true,
            })),
            ..Default::default()
        })),
    };
    let bytes = settings.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2]);
    let s = len_field(&bytes, 2);
    assert_eq!(varint_field(&len_field(&s, 4), 1), 3); // request_timeout
    let publishing = len_field(&s, 5);
    assert_eq!(varint_field(&publishing, 2), 4_194_304); // max_body_size
    assert_eq!(varint_field(&publishing, 3), 1); // validate_message_type

    let recover = v2::TelemetryCommand {
        status: None,
        command: Some(Command::RecoverOrphanedTransactionCommand(
            v2::RecoverOrphanedTransactionCommand {
                message: Some(sample_message()),
                transaction_id: "TX".to_owned(),
            },
        )),
    };
    let bytes = recover.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![5]);
    assert_eq!(len_field(&len_field(&bytes, 5), 2), b"TX");
}

#[test]
fn subscription_settings_fields() {
    let sub = v2::Subscription {
        group: Some(resource("G")),
        subscriptions: vec![],
        fifo: Some(false),
        receive_batch_size: Some(32),
        long_polling_timeout: Some(secs(20)),
        lite_subscription_quota: None,
        max_lite_topic_size: None,
    };
    let bytes = sub.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 3, 4, 5]);
    assert_eq!(varint_field(&bytes, 3), 0); // fifo, present though false
    assert_eq!(varint_field(&bytes, 4), 32);
}

#[test]
fn retry_policy_oneof() {
    let policy = v2::RetryPolicy {
        max_attempts: 3,
        strategy: Some(v2::retry_policy::Strategy::ExponentialBackoff(
            v2::ExponentialBackoff {
                initial: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 10_000_000,
                }),
                max: Some(secs(1)),
                multiplier: 2.0,
            },
        )),
    };
    let bytes = policy.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2]);
    let backoff = len_field(&bytes, 2);
    assert_eq!(only(&backoff, 3), Value::Fixed32(2.0f32.to_bits())); // float
}

#[test]
fn status_code_is_field_1_as_a_varint() {
    let status = v2::Status {
        code: v2::Code::TopicNotFound as i32,
        message: "no such topic".to_owned(),
    };
    let bytes = status.encode_to_vec();
    assert_eq!(varint_field(&bytes, 1), 40402);
    assert_eq!(len_field(&bytes, 2), b"no such topic");
}

#[test]
fn code_values() {
    use v2::Code;

    let expected: &[(Code, &str, i32)] = &[
        (Code::Unspecified, "CODE_UNSPECIFIED", 0),
        (Code::Ok, "OK", 20000),
        (Code::MultipleResults, "MULTIPLE_RESULTS", 30000),
        (Code::BadRequest, "BAD_REQUEST", 40000),
        (Code::IllegalAccessPoint, "ILLEGAL_ACCESS_POINT", 40001),
        (Code::IllegalTopic, "ILLEGAL_TOPIC", 40002),
        (Code::IllegalConsumerGroup, "ILLEGAL_CONSUMER_GROUP", 40003),
        (Code::IllegalMessageTag, "ILLEGAL_MESSAGE_TAG", 40004),
        (Code::IllegalMessageKey, "ILLEGAL_MESSAGE_KEY", 40005),
        (Code::IllegalMessageGroup, "ILLEGAL_MESSAGE_GROUP", 40006),
        (
            Code::IllegalMessagePropertyKey,
            "ILLEGAL_MESSAGE_PROPERTY_KEY",
            40007,
        ),
        (Code::InvalidTransactionId, "INVALID_TRANSACTION_ID", 40008),
        (Code::IllegalMessageId, "ILLEGAL_MESSAGE_ID", 40009),
        (
            Code::IllegalFilterExpression,
            "ILLEGAL_FILTER_EXPRESSION",
            40010,
        ),
        (Code::IllegalInvisibleTime, "ILLEGAL_INVISIBLE_TIME", 40011),
        (Code::IllegalDeliveryTime, "ILLEGAL_DELIVERY_TIME", 40012),
        (Code::InvalidReceiptHandle, "INVALID_RECEIPT_HANDLE", 40013),
        (
            Code::MessagePropertyConflictWithType,
            "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
            40014,
        ),
        (
            Code::UnrecognizedClientType,
            "UNRECOGNIZED_CLIENT_TYPE",
            40015,
        ),
        (Code::MessageCorrupted, "MESSAGE_CORRUPTED", 40016),
        (Code::ClientIdRequired, "CLIENT_ID_REQUIRED", 40017),
        (Code::IllegalPollingTime, "ILLEGAL_POLLING_TIME", 40018),
        (Code::IllegalOffset, "ILLEGAL_OFFSET", 40019),
        (Code::IllegalLiteTopic, "ILLEGAL_LITE_TOPIC", 40020),
        (Code::Unauthorized, "UNAUTHORIZED", 40100),
        (Code::PaymentRequired, "PAYMENT_REQUIRED", 40200),
        (Code::Forbidden, "FORBIDDEN", 40300),
        (Code::NotFound, "NOT_FOUND", 40400),
        (Code::MessageNotFound, "MESSAGE_NOT_FOUND", 40401),
        (Code::TopicNotFound, "TOPIC_NOT_FOUND", 40402),
        (
            Code::ConsumerGroupNotFound,
            "CONSUMER_GROUP_NOT_FOUND",
            40403,
        ),
        (Code::OffsetNotFound, "OFFSET_NOT_FOUND", 40404),
        (Code::RequestTimeout, "REQUEST_TIMEOUT", 40800),
        (Code::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 41300),
        (Code::MessageBodyTooLarge, "MESSAGE_BODY_TOO_LARGE", 41301),
        (Code::MessageBodyEmpty, "MESSAGE_BODY_EMPTY", 41302),
        (Code::PreconditionFailed, "PRECONDITION_FAILED", 42800),
        (Code::TooManyRequests, "TOO_MANY_REQUESTS", 42900),
        (
            Code::LiteTopicQuotaExceeded,
            "LITE_TOPIC_QUOTA_EXCEEDED",
            42901,
        ),
        (
            Code::LiteSubscriptionQuotaExceeded,
            "LITE_SUBSCRIPTION_QUOTA_EXCEEDED",
            42902,
        ),
        (
            Code::RequestHeaderFieldsTooLarge,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
            43100,
        ),
        (
            Code::MessagePropertiesTooLarge,
            "MESSAGE_PROPERTIES_TOO_LARGE",
            43101,
        ),
        (Code::InternalError, "INTERNAL_ERROR", 50000),
        (Code::InternalServerError, "INTERNAL_SERVER_ERROR", 50001),
        (Code::HaNotAvailable, "HA_NOT_AVAILABLE", 50002),
        (Code::NotImplemented, "NOT_IMPLEMENTED", 50100),
        (Code::ProxyTimeout, "PROXY_TIMEOUT", 50400),
        (
            Code::MasterPersistenceTimeout,
            "MASTER_PERSISTENCE_TIMEOUT",
            50401,
        ),
        (
            Code::SlavePersistenceTimeout,
            "SLAVE_PERSISTENCE_TIMEOUT",
            50402,
        ),
        (Code::Unsupported, "UNSUPPORTED", 50500),
        (Code::VersionUnsupported, "VERSION_UNSUPPORTED", 50501),
        (
            Code::VerifyFifoMessageUnsupported,
            "VERIFY_FIFO_MESSAGE_UNSUPPORTED",
            50502,
        ),
        (
            Code::FailedToConsumeMessage,
            "FAILED_TO_CONSUME_MESSAGE",
            60000,
        ),
    ];
    for &(code, name, number) in expected {
        assert_eq!(code as i32, number, "{name}");
        assert_eq!(code.as_str_name(), name);
        assert_eq!(Code::from_str_name(name), Some(code));
        assert_eq!(Code::try_from(number), Ok(code));
    }
    // v2.1.2 defines nothing at 40021.
    assert!(Code::try_from(40021).is_err());
}

#[test]
fn small_enum_values() {
    assert_eq!(v2::Permission::None as i32, 1);
    assert_eq!(v2::Permission::Read as i32, 2);
    assert_eq!(v2::Permission::Write as i32, 3);
    assert_eq!(v2::Permission::ReadWrite as i32, 4);

    assert_eq!(v2::MessageType::Normal as i32, 1);
    assert_eq!(v2::MessageType::Fifo as i32, 2);
    assert_eq!(v2::MessageType::Delay as i32, 3);
    assert_eq!(v2::MessageType::Transaction as i32, 4);
    assert_eq!(v2::MessageType::Lite as i32, 5);
    assert_eq!(v2::MessageType::Priority as i32, 6);

    assert_eq!(v2::AddressScheme::IPv4 as i32, 1);
    assert_eq!(v2::AddressScheme::IPv6 as i32, 2);
    assert_eq!(v2::AddressScheme::DomainName as i32, 3);

    assert_eq!(v2::ClientType::Producer as i32, 1);
    assert_eq!(v2::ClientType::PushConsumer as i32, 2);
    assert_eq!(v2::ClientType::SimpleConsumer as i32, 3);
    assert_eq!(v2::ClientType::PullConsumer as i32, 4);

    assert_eq!(v2::TransactionResolution::Commit as i32, 1);
    assert_eq!(v2::TransactionResolution::Rollback as i32, 2);
    assert_eq!(v2::TransactionSource::SourceClient as i32, 1);
    assert_eq!(v2::TransactionSource::SourceServerCheck as i32, 2);

    assert_eq!(v2::QueryOffsetPolicy::Beginning as i32, 0);
    assert_eq!(v2::QueryOffsetPolicy::End as i32, 1);
    assert_eq!(v2::QueryOffsetPolicy::Timestamp as i32, 2);

    assert_eq!(v2::Language::Rust as i32, 5);
    assert_eq!(v2::Language::Python as i32, 6);
    assert_eq!(v2::Language::NodeJs as i32, 8);
}

#[test]
fn ack_and_change_invisible_duration_fields() {
    let ack = v2::AckMessageRequest {
        group: Some(resource("G")),
        topic: Some(resource("T")),
        entries: vec![v2::AckMessageEntry {
            message_id: "M".to_owned(),
            receipt_handle: "RH".to_owned(),
            lite_topic: None,
        }],
    };
    let bytes = ack.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2, 3]);
    let entry = len_field(&bytes, 3);
    assert_eq!(len_field(&entry, 1), b"M");
    assert_eq!(len_field(&entry, 2), b"RH");

    let change = v2::ChangeInvisibleDurationRequest {
        group: Some(resource("G")),
        topic: Some(resource("T")),
        receipt_handle: "RH".to_owned(),
        invisible_duration: Some(secs(15)),
        message_id: "M".to_owned(),
        lite_topic: None,
        suspend: Some(true),
    };
    let bytes = change.encode_to_vec();
    assert_eq!(numbers(&bytes), vec![1, 2, 3, 4, 5, 7]);
    assert_eq!(len_field(&bytes, 3), b"RH");
    assert_eq!(varint_field(&len_field(&bytes, 4), 1), 15);
    assert_eq!(varint_field(&bytes, 7), 1);
}
