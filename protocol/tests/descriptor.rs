//! Checks on the compiled descriptors ([`tern_protocol::FILE_DESCRIPTOR_SET`]).
//!
//! `wire_snapshot` renders every message, field (number, label, type,
//! oneof, proto3 `optional`), enum value and RPC of our .proto files into a
//! canonical text, sorted so that layout and comments do not matter, and
//! compares it with the snapshot in `tests/golden/`. Any change that could
//! alter the wire (a renumbered field, a renamed RPC, a changed type) fails
//! here. The apache.rocketmq.v2 snapshots were checked against the
//! descriptors of the public v2.1.2 release when they were made.
//!
//! After an intended change to a .proto file, regenerate the snapshots with
//! `TERN_BLESS=1 cargo test -p tern-protocol --test descriptor` and review
//! the diff.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::fmt::Write as _;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::{
    DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(tern_protocol::FILE_DESCRIPTOR_SET).expect("valid descriptor set")
}

fn file<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a FileDescriptorProto {
    set.file
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} missing from the descriptor set"))
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn render_enum(out: &mut String, indent: &str, e: &EnumDescriptorProto) {
    let alias = e.options.as_ref().is_some_and(|o| o.allow_alias());
    writeln!(out, "{indent}enum {} allow_alias={alias}", e.name()).unwrap();
    for v in &e.value {
        writeln!(out, "{indent}  {}={}", v.name(), v.number()).unwrap();
    }
}

fn render_message(out: &mut String, indent: &str, m: &DescriptorProto) {
    let map_entry = m.options.as_ref().is_some_and(|o| o.map_entry());
    writeln!(out, "{indent}message {} opts={map_entry}", m.name()).unwrap();

    let mut fields: Vec<_> = m.field.iter().collect();
    fields.sort_by_key(|f| f.number());
    for f in fields {
        let label = Label::try_from(f.label.unwrap_or_default()).map_or("?", |l| l.as_str_name());
        let ty = Type::try_from(f.r#type.unwrap_or_default()).map_or("?", |t| t.as_str_name());
        let oneof = f.oneof_index.map_or("-".to_owned(), |i| {
            m.oneof_decl[usize::try_from(i).unwrap()].name().to_owned()
        });
        writeln!(
            out,
            "{indent}  {} {} {label} {ty} {} opt3={} oneof={oneof} def={} fopts={}",
            f.number(),
            f.name(),
            f.type_name(),
            f.proto3_optional(),
            f.default_value(),
            f.options.is_some(),
        )
        .unwrap();
    }

    let mut oneofs: Vec<String> = m.oneof_decl.iter().map(|o| o.name().to_owned()).collect();
    oneofs.sort();
    writeln!(out, "{indent}  oneofs={}", list(&oneofs)).unwrap();

    let nested_indent = format!("{indent}  ");
    let mut nested: Vec<_> = m.nested_type.iter().collect();
    nested.sort_by(|a, b| a.name().cmp(b.name()));
    for n in nested {
        render_message(out, &nested_indent, n);
    }
    let mut enums: Vec<_> = m.enum_type.iter().collect();
    enums.sort_by(|a, b| a.name().cmp(b.name()));
    for e in enums {
        render_enum(out, &nested_indent, e);
    }
    writeln!(
        out,
        "{indent}  ext={} ranges={} reserved={}{}",
        m.extension.len(),
        m.extension_range.len(),
        m.reserved_range.len(),
        list(&m.reserved_name),
    )
    .unwrap();
}

/// The canonical text of one file: everything that affects the wire or the
/// gRPC paths, and nothing that does not (comments, layout, options).
fn render_file(f: &FileDescriptorProto) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "file {} pkg={} syntax={}",
        f.name(),
        f.package(),
        f.syntax()
    )
    .unwrap();
    let mut deps = f.dependency.clone();
    deps.sort();
    let public: Vec<String> = f.public_dependency.iter().map(i32::to_string).collect();
    writeln!(out, "deps={} public={}", list(&deps), list(&public)).unwrap();

    let mut messages: Vec<_> = f.message_type.iter().collect();
    messages.sort_by(|a, b| a.name().cmp(b.name()));
    for m in messages {
        render_message(&mut out, "", m);
    }
    let mut enums: Vec<_> = f.enum_type.iter().collect();
    enums.sort_by(|a, b| a.name().cmp(b.name()));
    for e in enums {
        render_enum(&mut out, "", e);
    }
    for s in &f.service {
        writeln!(out, "service {}", s.name()).unwrap();
        for m in &s.method {
            let cs = if m.client_streaming() { "stream " } else { "" };
            let ss = if m.server_streaming() { "stream " } else { "" };
            writeln!(
                out,
                "  rpc {}({cs}{}) -> ({ss}{})",
                m.name(),
                m.input_type(),
                m.output_type()
            )
            .unwrap();
        }
    }
    writeln!(out, "ext={}", f.extension.len()).unwrap();
    out
}

#[test]
fn wire_snapshot() {
    let set = descriptor_set();
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("TERN_BLESS").is_some();
    let mut stale = Vec::new();
    for (proto, snapshot) in [
        (
            "apache/rocketmq/v2/definition.proto",
            "apache_rocketmq_v2_definition.txt",
        ),
        (
            "apache/rocketmq/v2/service.proto",
            "apache_rocketmq_v2_service.txt",
        ),
        (
            "apache/rocketmq/v2/admin.proto",
            "apache_rocketmq_v2_admin.txt",
        ),
        ("tern/admin/v1/admin.proto", "tern_admin_v1_admin.txt"),
        (
            "tern/nameserver/v1/nameserver.proto",
            "tern_nameserver_v1_nameserver.txt",
        ),
        (
            "tern/replication/v1/replication.proto",
            "tern_replication_v1_replication.txt",
        ),
    ] {
        let actual = render_file(file(&set, proto));
        let path = golden.join(snapshot);
        if bless {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if actual != expected {
            stale.push(proto);
        }
    }
    assert!(
        stale.is_empty(),
        "wire-level change in {stale:?}; if intended, rerun with TERN_BLESS=1 and review the diff"
    );
}

#[test]
fn messaging_service_has_exactly_the_17_rpcs() {
    let set = descriptor_set();
    let service = &file(&set, "apache/rocketmq/v2/service.proto").service;
    assert_eq!(service.len(), 1);
    assert_eq!(service[0].name(), "MessagingService");
    let methods: Vec<(&str, bool, bool)> = service[0]
        .method
        .iter()
        .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
        .collect();
    assert_eq!(
        methods,
        vec![
            ("QueryRoute", false, false),
            ("Heartbeat", false, false),
            ("SendMessage", false, false),
            ("QueryAssignment", false, false),
            ("ReceiveMessage", false, true),
            ("AckMessage", false, false),
            ("ForwardMessageToDeadLetterQueue", false, false),
            ("PullMessage", false, true),
            ("UpdateOffset", false, false),
            ("GetOffset", false, false),
            ("QueryOffset", false, false),
            ("EndTransaction", false, false),
            ("Telemetry", true, true),
            ("NotifyClientTermination", false, false),
            ("ChangeInvisibleDuration", false, false),
            ("RecallMessage", false, false),
            ("SyncLiteSubscription", false, false),
        ]
    );
    // Every RPC takes <Rpc>Request and returns <Rpc>Response, except
    // Telemetry, which streams TelemetryCommand both ways.
    for m in &service[0].method {
        let (input, output) = if m.name() == "Telemetry" {
            ("TelemetryCommand".to_owned(), "TelemetryCommand".to_owned())
        } else {
            (
                format!("{}Request", m.name()),
                format!("{}Response", m.name()),
            )
        };
        assert_eq!(m.input_type(), format!(".apache.rocketmq.v2.{input}"));
        assert_eq!(m.output_type(), format!(".apache.rocketmq.v2.{output}"));
    }
}

#[test]
fn descriptor_set_is_self_contained_and_lean() {
    let set = descriptor_set();
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    for needed in [
        "google/protobuf/duration.proto",
        "google/protobuf/timestamp.proto",
        "apache/rocketmq/v2/definition.proto",
        "apache/rocketmq/v2/service.proto",
        "apache/rocketmq/v2/admin.proto",
        "tern/admin/v1/admin.proto",
        "tern/nameserver/v1/nameserver.proto",
    ] {
        assert!(names.contains(&needed), "{needed} missing: {names:?}");
    }
    // Every import is in the set itself.
    for f in &set.file {
        for dep in &f.dependency {
            assert!(
                names.contains(&dep.as_str()),
                "{} imports missing {dep}",
                f.name()
            );
        }
    }
    assert!(set.file.iter().all(|f| f.source_code_info.is_none()));
}
