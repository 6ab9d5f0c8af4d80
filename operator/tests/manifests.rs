//! Checks on the files generated from or written for the operator: the
//! CRDs in `crds/` and in the chart, the chart's values and RBAC rules, and
//! the manifests under `examples/kubernetes/`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tern_operator::crd::{self, BrokerCluster, ConsumerGroup, TernUser, Topic};

const REGENERATE: &str =
    "cargo run -p tern-operator --bin crdgen -- crds charts/tern-operator/crds";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

#[test]
fn committed_crds_match_the_rust_types() {
    for dir in ["crds", "charts/tern-operator/crds"] {
        for (file, def) in crd::all() {
            let path = repo().join(dir).join(file);
            let want = crd::to_yaml(&def).expect("the CRD serializes");
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is missing or differs from the Rust types; regenerate it with `{REGENERATE}`",
                path.display()
            );
        }
    }
}

#[test]
fn crds_have_status_printcolumns_and_shortnames() {
    for (_, def) in crd::all() {
        let v = serde_json::to_value(&def).expect("serializes");
        let version = &v["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert_eq!(
            version["subresources"]["status"],
            serde_json::json!({}),
            "{}",
            v["metadata"]["name"]
        );
        assert!(
            version["additionalPrinterColumns"]
                .as_array()
                .is_some_and(|c| c.len() >= 3)
        );
        assert!(
            v["spec"]["names"]["shortNames"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(v["spec"]["names"]["categories"][0], "tern");
    }
}

#[test]
fn cel_rules_are_in_the_schema() {
    let topic = serde_json::to_string(&crd::all()[1].1).expect("serializes");
    assert!(
        topic.contains(r#""rule":"self >= oldSelf""#),
        "queues may not shrink"
    );
    assert!(topic.contains(r#""message":"clusterRef is immutable""#));
    let cluster = serde_json::to_string(&crd::all()[0].1).expect("serializes");
    assert!(cluster.contains(r#""rule":"self.diskHighWater <= self.diskHardLimit""#));
    assert!(cluster.contains(r#""rule":"size(self.metadata.name) <= 40""#));
    assert!(
        cluster.contains(r#""rule":"!self.clientAuthentication || has(self.certificateSecret)""#),
        "client authentication needs the Secret's CA"
    );
    assert!(cluster.contains(r#""rule":"!self.clientAuthentication || self.mode != 'Enforcing'""#));
}

// --- the chart ---------------------------------------------------------

#[test]
fn chart_values_match_their_schema() {
    let chart = repo().join("charts/tern-operator");
    let schema: Value =
        serde_json::from_str(&read(&chart.join("values.schema.json"))).expect("valid JSON");
    assert!(
        jsonschema::meta::is_valid(&schema),
        "values.schema.json is not a valid JSON Schema"
    );
    let validator = jsonschema::validator_for(&schema).expect("a usable schema");
    let values = documents(&chart.join("values.yaml")).remove(0);
    let errors: Vec<String> = validator
        .iter_errors(&values)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "values.yaml does not match values.schema.json: {errors:?}"
    );

    // The schema is strict: a misspelt key is refused.
    let mut typo = values.clone();
    typo["leaderElection"]["enable"] = Value::Bool(true);
    assert!(!validator.is_valid(&typo));
    let chart_yaml = documents(&chart.join("Chart.yaml")).remove(0);
    assert_eq!(chart_yaml["name"], "tern-operator");
    assert_eq!(chart_yaml["apiVersion"], "v2");
}

/// A template with its Helm directives replaced, parsed as YAML: lines that
/// are only a directive go, inline ones become a placeholder.
fn detemplate(path: &Path) -> Vec<Value> {
    let text: String = read(path)
        .lines()
        .filter(|l| !(l.trim_start().starts_with("{{") && l.trim_end().ends_with("}}")))
        .map(|l| {
            let mut out = String::new();
            let mut rest = l;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find("}}")
                    .map_or(rest.len(), |e| start + e + 2);
                out.push_str("placeholder");
                rest = &rest[end..];
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn the_cluster_role_grants_what_the_controllers_use_and_no_delete() {
    let role =
        detemplate(&repo().join("charts/tern-operator/templates/clusterrole.yaml")).remove(0);
    assert_eq!(role["kind"], "ClusterRole");
    let rules = role["rules"].as_array().expect("rules");
    let allows = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            let has = |key: &str, want: &str| {
                r[key]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == want))
            };
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    let needed = [
        ("tern.dev", "brokerclusters", &["get", "list", "watch"][..]),
        ("tern.dev", "topics", &["get", "list", "watch", "patch"]),
        (
            "tern.dev",
            "consumergroups",
            &["get", "list", "watch", "patch"],
        ),
        ("tern.dev", "brokerclusters/status", &["patch"]),
        ("tern.dev", "topics/status", &["patch"]),
        ("tern.dev", "consumergroups/status", &["patch"]),
        ("tern.dev", "ternusers", &["get", "list", "watch", "patch"]),
        ("tern.dev", "ternusers/status", &["patch"]),
        ("tern.dev", "brokerclusters/finalizers", &["update"]),
        ("tern.dev", "ternusers/finalizers", &["update"]),
        ("", "secrets", &["get", "create", "patch"]),
        (
            "apps",
            "statefulsets",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("", "services", &["list", "watch", "create", "patch"]),
        ("", "configmaps", &["list", "watch", "create", "patch"]),
        ("", "serviceaccounts", &["create", "patch"]),
        ("policy", "poddisruptionbudgets", &["create", "patch"]),
        ("events.k8s.io", "events", &["create"]),
    ];
    for (group, resource, verbs) in needed {
        for verb in verbs {
            assert!(
                allows(group, resource, verb),
                "the ClusterRole lacks {verb} on {group}/{resource}"
            );
        }
    }
    let deletes = rules.iter().any(|r| {
        r["verbs"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "delete" || x == "*"))
    });
    assert!(
        !deletes,
        "the operator deletes nothing itself; the garbage collector does"
    );
}

#[test]
fn every_chart_template_is_yaml_once_detemplated() {
    let dir = repo().join("charts/tern-operator/templates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the templates folder") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for doc in detemplate(&path) {
                assert!(
                    doc["kind"].is_string() && doc["apiVersion"].is_string(),
                    "{}",
                    path.display()
                );
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 6,
        "expected the Deployment, RBAC, ServiceAccount and Service; saw {seen}"
    );
}

// --- the examples ------------------------------------------------------

/// Asserts every field of `original` is in `round_trip` with the same
/// value, so a misspelt or misplaced key (which serde would ignore) fails.
fn assert_subset(original: &Value, round_trip: &Value, path: &str) {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let next = format!("{path}.{k}");
                let other = b
                    .get(k)
                    .unwrap_or_else(|| panic!("{next} is not a known field"));
                assert_subset(v, other, &next);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_subset(x, y, &format!("{path}[{i}]"));
            }
        }
        // Kubernetes quantities and numbers may come back as other spellings.
        (Value::Number(a), Value::Number(b)) => assert_eq!(a.as_f64(), b.as_f64(), "{path}"),
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

fn check<K: Serialize + DeserializeOwned>(doc: &Value, origin: &str) -> K {
    let typed: K = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{origin}: {e}"));
    let back = serde_json::to_value(&typed).expect("serializes");
    assert_subset(doc, &back, origin);
    typed
}

/// Validates `doc` against the openAPIV3Schema of `def`, as the API server
/// would (ranges, enums, types).
fn validate_against_crd(
    doc: &Value,
    def: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    origin: &str,
) {
    let schema =
        serde_json::to_value(&def.spec.versions[0].schema).expect("serializes")["openAPIV3Schema"]
            .clone();
    let validator =
        jsonschema::validator_for(&schema).expect("the CRD schema is usable as JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{origin}: {errors:?}");
}

#[test]
fn every_example_parses_into_the_operator_types() {
    let dir = repo().join("examples/kubernetes");
    let crds = crd::all();
    let mut kinds = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/kubernetes")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        for (i, doc) in documents(&path).iter().enumerate() {
            let origin = format!("{} document {i}", path.display());
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            match kind.as_str() {
                "BrokerCluster" => {
                    validate_against_crd(doc, &crds[0].1, &origin);
                    let c: BrokerCluster = check(doc, &origin);
                    assert!(c.spec.broker.groups >= 1);
                }
                "Topic" => {
                    validate_against_crd(doc, &crds[1].1, &origin);
                    let t: Topic = check(doc, &origin);
                    assert_eq!(t.spec.cluster_ref.name, "dev", "{origin}");
                }
                "ConsumerGroup" => {
                    validate_against_crd(doc, &crds[2].1, &origin);
                    let _: ConsumerGroup = check(doc, &origin);
                }
                "TernUser" => {
                    validate_against_crd(doc, &crds[3].1, &origin);
                    let u: TernUser = check(doc, &origin);
                    assert_eq!(u.spec.cluster_ref.name, "dev", "{origin}");
                }
                "Deployment" => {
                    let _: Deployment = check(doc, &origin);
                }
                "ConfigMap" => {
                    let _: ConfigMap = check(doc, &origin);
                }
                other => panic!("{origin}: no check for kind {other:?}"),
            }
            kinds.push(kind);
        }
    }
    for kind in [
        "BrokerCluster",
        "Topic",
        "ConsumerGroup",
        "TernUser",
        "Deployment",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} example");
    }
}

#[test]
fn an_example_with_a_misspelt_field_is_caught() {
    let doc = serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
        "metadata": { "name": "t" },
        "spec": { "clusterRef": { "name": "dev" }, "queue": 4 },
    });
    let caught = std::panic::catch_unwind(|| check::<Topic>(&doc, "typo"));
    assert!(caught.is_err(), "`queue` instead of `queues` must fail");
    let too_many = serde_json::json!({
        "apiVersion": "tern.dev/v1alpha1", "kind": "Topic",
        "metadata": { "name": "t" },
        "spec": { "clusterRef": { "name": "dev" }, "queues": 5000 },
    });
    let caught =
        std::panic::catch_unwind(|| validate_against_crd(&too_many, &crd::all()[1].1, "range"));
    assert!(caught.is_err(), "5000 queues is above the schema's maximum");
}
