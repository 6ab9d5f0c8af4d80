//! The certificates a test control plane needs, made with `rcgen`: a CA,
//! the kube-apiserver's serving certificate (for `127.0.0.1` and
//! `localhost`), an admin client certificate in the group `system:masters`,
//! and the key that signs service account tokens.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Paths of the PEM files written by [`write`].
#[derive(Debug)]
pub struct Certs {
    /// The CA certificate: clients trust it, the API server checks client
    /// certificates against it.
    pub ca: PathBuf,
    /// The API server's serving certificate and key.
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// The admin client certificate and key (`O=system:masters`).
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    /// The key that signs service account tokens, and its public half,
    /// which verifies them.
    pub service_account_key: PathBuf,
    pub service_account_public: PathBuf,
}

/// Generates every certificate and key into `dir`.
pub fn write(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).expect("create the certificate folder");
    let pem = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a PEM file");
        path
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tern-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("self-sign the CA");

    let leaf = |sans: Vec<String>, cn: &str, org: Option<&str>, usage| {
        let mut params = CertificateParams::new(sans).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(org) = org {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca).expect("sign a leaf");
        (cert.pem(), key.serialize_pem())
    };
    let (serving_cert, serving_key) = leaf(
        vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        "kube-apiserver",
        None,
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (admin_cert, admin_key) = leaf(
        Vec::new(),
        "tern-test-admin",
        Some("system:masters"),
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let service_account = KeyPair::generate().expect("service account key");

    Certs {
        ca: pem("ca.crt", ca.pem()),
        serving_cert: pem("apiserver.crt", serving_cert),
        serving_key: pem("apiserver.key", serving_key),
        admin_cert: pem("admin.crt", admin_cert),
        admin_key: pem("admin.key", admin_key),
        service_account_key: pem("service-account.key", service_account.serialize_pem()),
        service_account_public: pem("service-account.pub", service_account.public_key_pem()),
    }
}
