//! Server certificates: read from PEM files (and read again when the files
//! change), or generated at start, signed by a CA kept next to the data.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// File names of the generated CA in its directory.
pub(crate) const GENERATED_CA_CERT: &str = "ca.crt";
const GENERATED_CA_KEY: &str = "ca.key";
/// Subject of the generated CA: also what ties a leaf to it, as the CA
/// certificate itself is not needed to sign (its name and key are).
const GENERATED_CA_NAME: &str = "Tern generated CA";

/// Reads the certificate chain in `cert` (PEM) and the private key in
/// `key` (PEM: PKCS#8, PKCS#1 or SEC1) into a key rustls can serve.
pub(crate) fn load_pair(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let (chain, key) = parse_pair(cert_path, cert, key_path, key)?;
    certified(chain, key)
}

/// The chain and key in the PEM files `cert` and `key`.
pub(crate) fn read_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    parse_pair(
        cert,
        &read("certificate file", cert)?,
        key,
        &read("key file", key)?,
    )
}

fn parse_pair(
    cert_path: &Path,
    cert: &[u8],
    key_path: &Path,
    key: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = read_certs(cert_path, cert, "certificate file")?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Pem {
        what: "key file",
        path: key_path.to_owned(),
        reason: format!("no private key: {e}"),
    })?;
    Ok((chain, key))
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    let signing = crate::provider().key_provider.load_private_key(key)?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match()?;
    Ok(pair)
}

/// Every certificate in the PEM bytes `pem` read from `path`; at least
/// one.
pub(crate) fn read_certs(
    path: &Path,
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        what,
        path: path.to_owned(),
        source,
    })
}

/// A certificate generated for this process: the key rustls serves, and
/// where the CA that signed it was written (if anywhere).
pub(crate) struct Generated {
    pub key: CertifiedKey,
    pub ca_file: Option<PathBuf>,
}

/// Generates a certificate for `names` (DNS names or IP addresses),
/// signed by the CA in `ca_dir` (created there if missing) or by a CA
/// made for this process only.
pub(crate) fn generate(names: &[String], ca_dir: Option<&Path>) -> Result<Generated, TlsError> {
    let (ca_key, ca_der, ca_file) = match ca_dir {
        Some(dir) => {
            let (key, der, file) = stored_ca(dir)?;
            (key, der, Some(file))
        }
        None => {
            let key = KeyPair::generate()?;
            let der = ca_params().self_signed(&key)?.der().clone();
            (key, der, None)
        }
    };
    let issuer = Issuer::new(ca_params(), &ca_key);
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name = named("tern");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &issuer)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| TlsError::Settings(e.to_owned()))?;
    let key = certified(vec![cert.der().clone(), ca_der], key)?;
    Ok(Generated { key, ca_file })
}

fn named(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params() -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = named(GENERATED_CA_NAME);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca
}

/// The CA kept in `dir` (made and written on first use, the key readable
/// by the owner only): its key, its certificate and the certificate's
/// path.
fn stored_ca(dir: &Path) -> Result<(KeyPair, CertificateDer<'static>, PathBuf), TlsError> {
    let key_path = dir.join(GENERATED_CA_KEY);
    let cert_path = dir.join(GENERATED_CA_CERT);
    if key_path.exists() && cert_path.exists() {
        let pem = String::from_utf8_lossy(&read("generated CA key", &key_path)?).into_owned();
        let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
            what: "generated CA key",
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        let cert = read_certs(
            &cert_path,
            &read("generated CA", &cert_path)?,
            "generated CA",
        )?
        .swap_remove(0);
        return Ok((key, cert, cert_path));
    }
    let file_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::File {
            what: "generated CA",
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    let key = KeyPair::generate()?;
    let cert = ca_params().self_signed(&key)?;
    write_private(&key_path, key.serialize_pem().as_bytes()).map_err(file_error(&key_path))?;
    std::fs::write(&cert_path, cert.pem()).map_err(file_error(&cert_path))?;
    Ok((key, cert.der().clone(), cert_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The certificate every TLS handshake is answered with: one that can be
/// swapped while connections are served.
pub(crate) struct Current {
    key: RwLock<Arc<CertifiedKey>>,
    /// The files it came from, with the bytes last read from them; `None`
    /// for a generated certificate.
    files: Option<Mutex<Files>>,
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
    read: (Vec<u8>, Vec<u8>),
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("reloads", &self.files.is_some())
            .finish_non_exhaustive()
    }
}

impl Current {
    pub(crate) fn fixed(key: CertifiedKey) -> Self {
        Self {
            key: RwLock::new(Arc::new(key)),
            files: None,
        }
    }

    /// The pair in the files `cert` and `key`, read now.
    pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read("certificate file", cert)?;
        let key_pem = read("key file", key)?;
        let pair = load_pair(cert, &cert_pem, key, &key_pem)?;
        Ok(Self {
            key: RwLock::new(Arc::new(pair)),
            files: Some(Mutex::new(Files {
                cert: cert.to_owned(),
                key: key.to_owned(),
                read: (cert_pem, key_pem),
            })),
        })
    }

    /// Reads the files again; when their bytes changed and make a valid
    /// pair, serves the new pair to handshakes from now on. A pair that
    /// does not load (a half-written file, a key that does not match)
    /// leaves the old one in place and is tried again next time.
    pub(crate) fn reload(&self) -> Result<bool, TlsError> {
        let Some(files) = &self.files else {
            return Ok(false);
        };
        let mut files = files.lock();
        let cert_pem = read("certificate file", &files.cert)?;
        let key_pem = read("key file", &files.key)?;
        if (&cert_pem, &key_pem) == (&files.read.0, &files.read.1) {
            return Ok(false);
        }
        let pair = load_pair(&files.cert, &cert_pem, &files.key, &key_pem)?;
        *self.key.write() = Arc::new(pair);
        files.read = (cert_pem, key_pem);
        Ok(true)
    }

    pub(crate) fn reloads(&self) -> bool {
        self.files.is_some()
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.key.read()))
    }
}

/// Reads the files of `current` every `interval` for as long as anything
/// else holds it.
pub(crate) async fn watch(current: Weak<Current>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(current) = current.upgrade() else {
            return;
        };
        match current.reload() {
            Ok(true) => tracing::info!("TLS certificate reloaded: new connections get the new one"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; still serving the previous one")
            }
        }
    }
}
