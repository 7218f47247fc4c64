//! The allocator service's certificates, as the Agones chart generates them with
//! `agones.allocator.generateTLS` and `generateClientTLS` on
//! (`install/helm/agones/templates/service/allocation.yaml`: `genCA`, `genSignedCert`, no
//! `lookup`, so every render makes new ones): a CA (`allocator-tls-ca`) signing the server's
//! certificate (`allocator-tls`), and a client CA (`allocator-client-ca`) signing the default
//! client's certificate (`allocator-client.default`).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why certificates or the TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// One install's certificates (PEM) and the server configuration that uses them.
pub struct Material {
    /// `allocator-tls-ca`'s `tls-ca.crt`: what clients trust the server with.
    pub ca_pem: String,
    /// `allocator-client-ca`: what the server trusts clients with.
    pub client_ca_pem: String,
    /// `allocator-client.default`'s `tls.crt` and `tls.key`.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// Serves `allocator-tls` and requires a client certificate from `allocator-client-ca`.
    pub server: Arc<rustls::ServerConfig>,
}

fn ca_params(name: &str) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Generates a new set: two CAs, the server's certificate for `names` (DNS names or IP
/// addresses, e.g. `localhost`, `127.0.0.1`) and the default client's certificate.
pub fn generate(names: &[String]) -> Result<Material, CertError> {
    let ca = CertifiedIssuer::self_signed(ca_params("allocation-ca")?, KeyPair::generate()?)?;
    let client_ca =
        CertifiedIssuer::self_signed(ca_params("allocation-client-ca")?, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let mut sp = CertificateParams::new(names.to_vec())?;
    sp.distinguished_name
        .push(DnType::CommonName, "agones-allocator");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &ca)?;
    let client_key = KeyPair::generate()?;
    let mut cp = CertificateParams::new(Vec::<String>::new())?;
    cp.distinguished_name
        .push(DnType::CommonName, "allocator-client.default");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &client_ca)?;

    let server = server_config(
        client_ca.der().clone(),
        server_cert.der().clone(),
        PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
    )?;
    Ok(Material {
        ca_pem: ca.pem(),
        client_ca_pem: client_ca.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        server,
    })
}

/// The ring provider, named explicitly: the workspace builds rustls with more than one.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(
    client_ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, CertError> {
    let mut roots = RootCertStore::empty();
    roots.add(client_ca)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert], key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
