//! Authentication (`spec.authentication.type: Acl`): the admin Secret the
//! operator creates once per cluster, the broker pods' environment that
//! reads it, the `[auth]` table of `broker.toml`, and the Secrets of
//! `TernUser`s.
//!
//! Secret keys never reach a ConfigMap or a pod template: the pods read
//! them from the Secret through `secretKeyRef`, so only the Secret's name
//! is part of the template (and of its hash).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Secret, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use tern_client::Credentials;

use super::Owner;
use super::names::{LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, Names};
use crate::crd::TernUser;
use crate::crd::cluster::{AuthenticationType, BrokerClusterSpec};
use crate::error::{Error, Result};

/// Key of a credentials Secret holding the access key (the user name).
pub const ACCESS_KEY: &str = "accessKey";
/// Key of a credentials Secret holding the secret key.
pub const SECRET_KEY: &str = "secretKey";
/// The operator's own super user in the brokers.
pub const ADMIN_USER: &str = "tern-operator";
/// Length of a generated secret key (letters and digits: about 238 bits).
pub const SECRET_KEY_LEN: usize = 40;
/// The variable turning checks on (`tern broker` reads it like
/// `--auth-enabled`; `[auth] enabled` in the file says the same).
pub const ENV_ENABLED: &str = "TERN_AUTH_ENABLED";
/// The bootstrap super user's access key.
pub const ENV_BOOTSTRAP_ACCESS_KEY: &str = "TERN_AUTH_BOOTSTRAP_ACCESS_KEY";
/// The bootstrap super user's secret key.
pub const ENV_BOOTSTRAP_SECRET_KEY: &str = "TERN_AUTH_BOOTSTRAP_SECRET_KEY";

/// Whether the cluster checks requests.
pub fn enabled(spec: &BrokerClusterSpec) -> bool {
    spec.authentication.type_ == AuthenticationType::Acl
}

/// The broker container's variables: the bootstrap super user from the
/// admin Secret (none without authentication).
pub fn broker_env(spec: &BrokerClusterSpec, names: &Names) -> Vec<EnvVar> {
    if !enabled(spec) {
        return Vec::new();
    }
    let from = |name: &str, key: &str| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: names.admin_secret(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    vec![
        from(ENV_BOOTSTRAP_ACCESS_KEY, ACCESS_KEY),
        from(ENV_BOOTSTRAP_SECRET_KEY, SECRET_KEY),
    ]
}

fn data(access_key: &str, secret_key: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([
        (
            ACCESS_KEY.to_owned(),
            ByteString(access_key.as_bytes().to_vec()),
        ),
        (
            SECRET_KEY.to_owned(),
            ByteString(secret_key.as_bytes().to_vec()),
        ),
    ])
}

/// The admin Secret `c-tern-admin`, owned by the cluster: the bootstrap
/// super user the brokers make at start and the operator signs with.
/// Created once and never overwritten (a new key would not reach brokers
/// that already started with the old one until they restart).
pub fn admin_secret(owner: &Owner<'_>, secret_key: &str) -> Secret {
    let names = &owner.names;
    Secret {
        metadata: owner.meta(&names.admin_secret(), names.cluster_labels()),
        type_: Some("Opaque".to_owned()),
        data: Some(data(ADMIN_USER, secret_key)),
        ..Secret::default()
    }
}

/// The Secret of `user` with `secret_key`, owned by the `TernUser` (the
/// garbage collector deletes it with the resource).
pub fn user_secret(user: &TernUser, secret_key: &str) -> Result<Secret> {
    let missing = |field| Error::MissingField {
        kind: "TernUser",
        field,
    };
    let owner_ref = OwnerReference {
        block_owner_deletion: Some(true),
        ..user
            .controller_owner_ref(&())
            .ok_or_else(|| missing("metadata.uid"))?
    };
    let labels = BTreeMap::from([
        (LABEL_NAME.to_owned(), "tern".to_owned()),
        (
            LABEL_INSTANCE.to_owned(),
            user.spec.cluster_ref.name.clone(),
        ),
        (LABEL_COMPONENT.to_owned(), "user".to_owned()),
        (LABEL_MANAGED_BY.to_owned(), "tern-operator".to_owned()),
    ]);
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(user.secret_name().to_owned()),
            namespace: Some(
                user.namespace()
                    .ok_or_else(|| missing("metadata.namespace"))?,
            ),
            labels: Some(labels),
            owner_references: Some(vec![owner_ref]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data(user.user_name(), secret_key)),
        ..Secret::default()
    })
}

/// A new secret key: [`SECRET_KEY_LEN`] letters and digits from the
/// operating system's random source (unbiased: bytes past the last whole
/// multiple of 62 are drawn again).
pub fn generate_secret_key() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let limit = u8::try_from(256 / ALPHABET.len() * ALPHABET.len()).unwrap_or(u8::MAX);
    let mut key = String::with_capacity(SECRET_KEY_LEN);
    let mut buf = [0u8; 64];
    while key.len() < SECRET_KEY_LEN {
        getrandom::fill(&mut buf).map_err(|e| Error::Credentials {
            secret: "(new secret key)".to_owned(),
            reason: format!("no random bytes from the operating system: {e}"),
        })?;
        for b in buf {
            if b < limit && key.len() < SECRET_KEY_LEN {
                key.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(key)
}

/// The value of `key` in `secret`, as text.
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

/// The credentials a Secret holds (`accessKey`, `secretKey`).
pub fn credentials_of(secret: &Secret) -> Result<Credentials> {
    let name = secret.name_any();
    let err = |reason: String| Error::Credentials {
        secret: name.clone(),
        reason,
    };
    let access = secret_value(secret, ACCESS_KEY).ok_or_else(|| err(format!("no {ACCESS_KEY}")))?;
    let key = secret_value(secret, SECRET_KEY).ok_or_else(|| err(format!("no {SECRET_KEY}")))?;
    Credentials::new(access, key).map_err(|e| err(e.to_string()))
}

/// Whether `key` can be a secret key (what [`Credentials::new`] accepts).
pub fn valid_secret_key(key: &str) -> bool {
    Credentials::new("x", key).is_ok()
}
