//! `tern user`, `tern acl` and the connection options `--access-key` and
//! `--secret-key` against a real `tern standalone --auth-enabled` with a
//! bootstrap super user: who may call what, through the admin service and
//! the messaging service, and that users and rules survive a restart.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tern_harness::{TernProcess, cli_command, free_port};

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const ROOT: (&str, &str) = ("root", "root-secret-key");

/// A `tern standalone` that checks requests, with the bootstrap super user
/// `root` (its secret key from the environment).
struct Node {
    tern: TernProcess,
    endpoint: String,
    data: PathBuf,
    _tmp: tempfile::TempDir,
}

fn start(data: &std::path::Path, endpoint: &str) -> TernProcess {
    let mut c = Command::new(TERN);
    c.args(["--log-format", "text", "standalone", "--data-dir"])
        .arg(data)
        .args([
            "--listen",
            endpoint,
            "--auth-enabled",
            "--auth-bootstrap-access-key",
            ROOT.0,
        ])
        .env("TERN_AUTH_BOOTSTRAP_SECRET_KEY", ROOT.1)
        .env("RUST_LOG", "info");
    let mut tern = TernProcess::spawn(c, data).unwrap();
    tern.wait_for_log("listening", Duration::from_secs(30))
        .unwrap();
    tern
}

impl Node {
    fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let endpoint = format!("127.0.0.1:{}", free_port());
        let tern = start(&data, &endpoint);
        Self {
            tern,
            endpoint,
            data,
            _tmp: tmp,
        }
    }

    fn restart(&mut self) {
        self.tern.terminate().unwrap();
        self.tern = start(&self.data, &self.endpoint);
    }

    /// `tern ARGS --endpoint <node>` signed as `user` (through the
    /// environment variables), or unsigned.
    fn run(&self, user: Option<(&str, &str)>, args: &[&str]) -> Output {
        let mut c = cli_command(TERN);
        c.args(args).args(["--endpoint", &self.endpoint]);
        c.env_remove("TERN_ACCESS_KEY")
            .env_remove("TERN_SECRET_KEY");
        if let Some((key, secret)) = user {
            c.env("TERN_ACCESS_KEY", key).env("TERN_SECRET_KEY", secret);
        }
        c.output().unwrap()
    }

    #[track_caller]
    fn ok(&self, user: Option<(&str, &str)>, args: &[&str]) -> String {
        let out = self.run(user, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tern {args:?} as {user:?} failed:\n{stdout}\n{}\nbroker log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.tern.log().unwrap_or_default()
        );
        stdout
    }

    #[track_caller]
    fn json(&self, user: Option<(&str, &str)>, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.ok(user, &all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs a command that must fail; its standard error, which must
    /// contain `reason`.
    #[track_caller]
    fn refused(&self, user: Option<(&str, &str)>, args: &[&str], reason: &str) -> String {
        let out = self.run(user, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "tern {args:?} as {user:?} should fail:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(reason),
            "tern {args:?} as {user:?}: expected {reason:?} in:\n{stderr}"
        );
        stderr
    }
}

#[test]
fn users_and_rules_decide_who_may_do_what() {
    let mut node = Node::start();
    let consume = ["consume", "orders", "--group", "g", "--wait", "1"];

    // Nobody without credentials, not even to list.
    node.refused(None, &["topic", "list"], "UNAUTHENTICATED: no credentials");
    node.ok(Some(ROOT), &["topic", "create", "orders", "--queues", "2"]);
    assert!(node.ok(Some(ROOT), &["topic", "list"]).contains("orders"));
    // The flags work as the variables do.
    let out = node.ok(
        None,
        &[
            "topic",
            "describe",
            "orders",
            "--access-key",
            ROOT.0,
            "--secret-key",
            ROOT.1,
        ],
    );
    assert!(out.contains("orders"), "{out}");
    node.refused(
        Some((ROOT.0, "not-the-secret")),
        &["topic", "list"],
        "does not match (wrong secret key)",
    );

    // A user with a generated secret key, shown once.
    let created = node.json(Some(ROOT), &["user", "create", "app"]);
    assert_eq!(created["kind"], "normal");
    let secret = created["secret_key"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "{created}");
    let app = Some(("app", secret.as_str()));
    let table = node.ok(Some(ROOT), &["user", "list"]);
    assert!(table.contains("app") && table.contains("root"), "{table}");
    let listed = node.json(Some(ROOT), &["user", "list"]).to_string();
    assert!(
        !listed.contains(&secret) && !listed.contains(ROOT.1),
        "{listed}"
    );
    assert!(!listed.contains("secret"), "no secret key field: {listed}");

    // Pub on orders: app may send, but not receive, nor change topics.
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "orders",
            "--actions",
            "pub",
        ],
    );
    node.ok(app, &["produce", "orders", "--body", "one"]);
    node.refused(app, &consume, "FORBIDDEN (40300)");
    node.refused(app, &["topic", "create", "x"], "PERMISSION_DENIED");
    node.refused(app, &["topic", "list"], "PERMISSION_DENIED");
    // Nor manage users and rules.
    node.refused(app, &["user", "list"], "PERMISSION_DENIED");
    node.refused(app, &["user", "create", "eve"], "PERMISSION_DENIED");
    node.refused(
        app,
        &["acl", "grant", "app", "--topic", "*", "--actions", "sub"],
        "PERMISSION_DENIED",
    );
    node.refused(app, &["acl", "list"], "PERMISSION_DENIED");

    // Sub on the group and the topic: the consumer gets the message.
    node.ok(
        Some(ROOT),
        &["acl", "grant", "app", "--group", "g", "--actions", "sub"],
    );
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "orders",
            "--actions",
            "sub",
        ],
    );
    let rules = node.json(Some(ROOT), &["acl", "list", "app"]);
    let rules = rules[0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "pub and sub on orders merged: {rules:?}");
    let got = node.ok(app, &consume);
    assert!(got.contains("one"), "{got}");

    // A deny wins over the allow; revoking it lets app send again.
    node.ok(app, &["produce", "orders", "--body", "two"]);
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "app",
            "--topic",
            "orders",
            "--actions",
            "pub",
            "--deny",
        ],
    );
    node.refused(
        app,
        &["produce", "orders", "--body", "three"],
        "FORBIDDEN (40300)",
    );
    let table = node.ok(Some(ROOT), &["acl", "list"]);
    assert!(
        table.contains("deny") && table.contains("everything"),
        "{table}"
    );
    node.ok(
        Some(ROOT),
        &["acl", "revoke", "app", "--topic", "orders", "--deny"],
    );
    node.ok(app, &["produce", "orders", "--body", "three"]);
    // Revoking sub on the group stops the consumer.
    node.ok(
        Some(ROOT),
        &["acl", "revoke", "app", "--group", "g", "--actions", "sub"],
    );
    node.refused(app, &consume, "FORBIDDEN (40300)");
    node.refused(
        Some(ROOT),
        &["acl", "revoke", "app", "--group", "g"],
        "no allow rule for group `g`",
    );

    // Users and rules survive a restart.
    node.restart();
    node.ok(app, &["produce", "orders", "--body", "four"]);
    node.refused(app, &consume, "FORBIDDEN (40300)");
    let rules = node.json(Some(ROOT), &["acl", "list", "app"]);
    assert_eq!(rules[0]["rules"].as_array().unwrap().len(), 1, "{rules}");

    // A new secret key: the old one is refused.
    node.ok(
        Some(ROOT),
        &[
            "user",
            "update",
            "app",
            "--user-secret-key",
            "app-new-secret",
        ],
    );
    node.refused(
        app,
        &["produce", "orders", "--body", "five"],
        "UNAUTHORIZED (40100)",
    );
    let app = Some(("app", "app-new-secret"));
    node.ok(app, &["produce", "orders", "--body", "five"]);

    // A deleted user is unknown.
    node.ok(Some(ROOT), &["user", "delete", "app"]);
    let err = node.refused(
        app,
        &["produce", "orders", "--body", "six"],
        "UNAUTHORIZED (40100)",
    );
    assert!(err.contains("unknown access key `app`"), "{err}");
    node.refused(app, &["topic", "list"], "UNAUTHENTICATED");
    node.refused(
        Some(ROOT),
        &["user", "delete", "app"],
        "NOT_FOUND: no user `app`",
    );

    // Every refusal and change is in the audit log.
    let log = node.tern.log().unwrap();
    assert!(log.contains("tern::audit"), "{log}");
    assert!(log.contains("admin change"), "{log}");
    assert!(log.contains("request refused"), "{log}");
    node.tern.terminate().unwrap();
}

#[test]
fn super_users_are_made_and_unmade() {
    let node = Node::start();
    let made = node.json(
        Some(ROOT),
        &[
            "user",
            "create",
            "ops",
            "--super",
            "--user-secret-key",
            "ops-secret-key",
        ],
    );
    assert_eq!(made["secret_key"], "ops-secret-key");
    let ops = Some(("ops", "ops-secret-key"));
    node.ok(ops, &["topic", "create", "t"]);
    node.ok(
        ops,
        &["user", "create", "x", "--user-secret-key", "x-secret-key"],
    );
    node.refused(
        ops,
        &["user", "create", "x"],
        "ALREADY_EXISTS: user `x` exists already",
    );
    node.ok(Some(ROOT), &["user", "update", "ops", "--normal"]);
    node.refused(ops, &["topic", "create", "u"], "PERMISSION_DENIED");
    node.refused(ops, &["cluster", "status"], "PERMISSION_DENIED");
    // List on `*`: listing and the cluster status.
    node.ok(
        Some(ROOT),
        &["acl", "grant", "ops", "--topic", "*", "--actions", "list"],
    );
    node.ok(ops, &["cluster", "status"]);
    assert!(node.ok(ops, &["topic", "list"]).contains('t'));
    // A rule for another network does not apply.
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "ops",
            "--topic",
            "t",
            "--actions",
            "get",
            "--source",
            "10.0.0.0/8",
        ],
    );
    node.refused(ops, &["topic", "describe", "t"], "PERMISSION_DENIED");
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "ops",
            "--topic",
            "t",
            "--actions",
            "get",
            "--source",
            "127.0.0.1",
        ],
    );
    node.ok(ops, &["topic", "describe", "t"]);
    // Message lookups need get on the message's topic.
    node.ok(Some(ROOT), &["topic", "create", "m"]);
    let sent = node.json(Some(ROOT), &["produce", "m", "--body", "m"]);
    let id = sent["message_id"].as_str().unwrap().to_owned();
    node.refused(
        ops,
        &["message", "get", &id],
        "PERMISSION_DENIED: user `ops` may not get topic `m`",
    );
    node.refused(
        ops,
        &["message", "query", "--topic", "m"],
        "PERMISSION_DENIED",
    );
    node.ok(
        Some(ROOT),
        &["acl", "grant", "ops", "--topic", "m", "--actions", "get"],
    );
    assert!(node.ok(ops, &["message", "get", &id]).contains(&id));
    node.ok(ops, &["message", "query", "--topic", "m"]);
    // And describing a group needs get on the group.
    node.ok(Some(ROOT), &["group", "create", "g"]);
    node.refused(ops, &["group", "describe", "g"], "PERMISSION_DENIED");
    node.refused(ops, &["group", "delete", "g"], "PERMISSION_DENIED");
    node.ok(
        Some(ROOT),
        &[
            "acl",
            "grant",
            "ops",
            "--group",
            "g*",
            "--actions",
            "get,delete",
        ],
    );
    node.ok(ops, &["group", "describe", "g"]);
    node.ok(ops, &["group", "delete", "g"]);
    node.refused(
        Some(ROOT),
        &["user", "create", "bad name"],
        "INVALID_ARGUMENT",
    );
    node.refused(
        Some(ROOT),
        &["user", "create", "y", "--user-secret-key", "short"],
        "INVALID_ARGUMENT",
    );
}

#[test]
fn bench_refuses_credentials() {
    let out = cli_command(TERN)
        .args([
            "bench",
            "produce",
            "--endpoint",
            "127.0.0.1:1",
            "--access-key",
            "a",
            "--secret-key",
            "b",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("does not sign its requests"), "{stderr}");
    // One without the other is refused by the parser.
    let out = cli_command(TERN)
        .args(["topic", "list", "--access-key", "a"])
        .env_remove("TERN_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-key"));
}
