//! Detached CMS signatures over a confirmation challenge, verified against trusted
//! certification authorities, in pure Rust.
//!
//! The sandbox profile: ECDSA P-256 with SHA-256, one level of chain (the signer's
//! certificate issued by a trusted authority), the subject attributes of a Russian
//! qualified certificate (SNILS, INN, surname, given name). Real qualified signatures use
//! GOST R 34.10-2012 and an accredited trust list kept by the state; verifying those is
//! a verification service's job, and no adapter for one is built.

use std::time::SystemTime;

use base64::Engine as _;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, DecodePem, Encode, Tag, Tagged};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::Certificate;

use crate::services::e_signature::{SignatureRefusal, SignatureVerifier, SignedIdentity};

pub mod sandbox_ca;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub(crate) const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
pub(crate) const OID_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// Subject attributes of Russian qualified certificates.
pub(crate) const OID_SNILS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.100.3");
pub(crate) const OID_INN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.3.131.1.1");
pub(crate) const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
pub(crate) const OID_GIVEN_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");

/// The largest signature accepted, as sent (base64 or PEM of DER): a signature with its
/// certificate is about 1 KB; a chain of a few certificates stays well under this.
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;

use SignatureRefusal as R;

fn malformed(e: impl std::fmt::Display) -> SignatureRefusal {
    R::Malformed(e.to_string())
}

/// Verifies against the sandbox certification authority (`shared/sandbox`), whose key is
/// published: a deployment may build it only where sandboxes are allowed.
pub struct SandboxSignatureVerifier {
    trusted: Vec<Certificate>,
}

impl SandboxSignatureVerifier {
    pub fn new() -> Result<Self, SignatureRefusal> {
        Ok(Self {
            trusted: vec![Certificate::from_pem(sandbox_ca::CA_CERTIFICATE_PEM).map_err(malformed)?],
        })
    }
}

impl SignatureVerifier for SandboxSignatureVerifier {
    fn verify(
        &self,
        signature: &str,
        content: &[u8],
        now: OffsetDateTime,
    ) -> Result<SignedIdentity, SignatureRefusal> {
        verify_detached(signature, content, &self.trusted, now.into())
    }
}

/// DER as base64, with or without PEM armour (what browser plug-ins hand over).
fn decode_input(input: &str) -> Result<Vec<u8>, SignatureRefusal> {
    if input.len() > MAX_SIGNATURE_BYTES {
        return Err(malformed("too long"));
    }
    let b64: String = input
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(malformed)
}

/// Verifies `signature`, a detached CMS SignedData, over `content` (the challenge).
pub fn verify_detached(
    signature: &str,
    content: &[u8],
    trusted: &[Certificate],
    now: SystemTime,
) -> Result<SignedIdentity, SignatureRefusal> {
    let der = decode_input(signature)?;
    let info = ContentInfo::from_der(&der).map_err(malformed)?;
    if info.content_type != OID_SIGNED_DATA {
        return Err(malformed("content type is not signedData"));
    }
    let signed: SignedData = info.content.decode_as().map_err(malformed)?;
    if signed.encap_content_info.econtent.is_some() {
        return Err(R::NotDetached);
    }
    let mut signers = signed.signer_infos.0.iter();
    let (Some(signer), None) = (signers.next(), signers.next()) else {
        return Err(malformed("exactly one signer expected"));
    };
    let cert = signer_certificate(&signed, signer)?;

    // The signed attributes say that what was signed is the challenge.
    if signer.digest_alg.oid != OID_SHA256 {
        return Err(R::UnsupportedAlgorithm(signer.digest_alg.oid.to_string()));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or_else(|| malformed("no signed attributes"))?;
    let single = |oid: ObjectIdentifier| -> Result<&Any, SignatureRefusal> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(a), None) if a.values.len() == 1 => a
                .values
                .get(0)
                .ok_or_else(|| malformed(format!("attribute {oid} empty"))),
            _ => Err(malformed(format!("attribute {oid} missing or repeated"))),
        }
    };
    let content_type: ObjectIdentifier =
        single(OID_CONTENT_TYPE)?.decode_as().map_err(malformed)?;
    if content_type != OID_DATA {
        return Err(malformed("content-type attribute is not id-data"));
    }
    let digest: OctetString = single(OID_MESSAGE_DIGEST)?.decode_as().map_err(malformed)?;
    if digest.as_bytes() != Sha256::digest(content).as_slice() {
        return Err(R::DigestMismatch);
    }

    // The signature is over the DER of the signed attributes as a SET OF (RFC 5652
    // §5.4), with the signer's key.
    let signed_attrs = attrs.to_der().map_err(malformed)?;
    let algorithm = signer.signature_algorithm.oid;
    if algorithm != OID_ECDSA_SHA256 && algorithm != OID_EC_PUBLIC_KEY {
        return Err(R::UnsupportedAlgorithm(algorithm.to_string()));
    }
    verify_p256(&cert, &signed_attrs, signer.signature.as_bytes())?;

    // The certificate: valid now, for signing, issued by a trusted authority.
    check_validity(&cert, now)?;
    let tbs = cert.tbs_certificate();
    let usage = tbs
        .get_extension::<KeyUsage>()
        .map_err(malformed)?
        .ok_or(R::NotForSigning)?;
    if !usage.1 .0.contains(KeyUsages::DigitalSignature) {
        return Err(R::NotForSigning);
    }
    if let Some((_, constraints)) = tbs.get_extension::<BasicConstraints>().map_err(malformed)? {
        if constraints.ca {
            return Err(R::NotForSigning);
        }
    }
    let issuer = trusted
        .iter()
        .find(|ca| ca.tbs_certificate().subject() == tbs.issuer())
        .ok_or(R::UntrustedIssuer)?;
    check_authority(issuer, now)?;
    if cert.signature_algorithm().oid != OID_ECDSA_SHA256 {
        return Err(R::UnsupportedAlgorithm(
            cert.signature_algorithm().oid.to_string(),
        ));
    }
    let tbs_der = tbs.to_der().map_err(malformed)?;
    verify_p256(issuer, &tbs_der, cert.signature().raw_bytes()).map_err(|_| R::UntrustedIssuer)?;
    identity(&cert)
}

fn signer_certificate(
    signed: &SignedData,
    signer: &SignerInfo,
) -> Result<Certificate, SignatureRefusal> {
    let certificates = signed
        .certificates
        .as_ref()
        .ok_or(R::SignerCertificateMissing)?;
    for choice in certificates.0.iter() {
        let CertificateChoices::Certificate(c) = choice else {
            continue;
        };
        let tbs = c.tbs_certificate();
        let matches = match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => {
                &id.issuer == tbs.issuer() && &id.serial_number == tbs.serial_number()
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
                tbs.get_extension::<SubjectKeyIdentifier>(),
                Ok(Some((_, own))) if own == *ski
            ),
        };
        if matches {
            return Ok(c.clone());
        }
    }
    Err(R::SignerCertificateMissing)
}

fn verify_p256(holder: &Certificate, message: &[u8], der: &[u8]) -> Result<(), SignatureRefusal> {
    let spki = holder.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
        return Err(R::UnsupportedAlgorithm(spki.algorithm.oid.to_string()));
    }
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| malformed("no curve"))?
        .decode_as()
        .map_err(malformed)?;
    if curve != OID_PRIME256V1 {
        return Err(R::UnsupportedAlgorithm(curve.to_string()));
    }
    let key =
        VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes()).map_err(malformed)?;
    let signature = Signature::from_der(der).map_err(|_| R::BadSignature)?;
    key.verify(message, &signature).map_err(|_| R::BadSignature)
}

fn check_validity(c: &Certificate, now: SystemTime) -> Result<(), SignatureRefusal> {
    let validity = c.tbs_certificate().validity();
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return Err(R::Expired);
    }
    Ok(())
}

fn check_authority(ca: &Certificate, now: SystemTime) -> Result<(), SignatureRefusal> {
    check_validity(ca, now)?;
    let tbs = ca.tbs_certificate();
    match tbs.get_extension::<BasicConstraints>().map_err(malformed)? {
        Some((_, constraints)) if constraints.ca => {}
        _ => return Err(R::UntrustedIssuer),
    }
    if let Some((_, usage)) = tbs.get_extension::<KeyUsage>().map_err(malformed)? {
        if !usage.0.contains(KeyUsages::KeyCertSign) {
            return Err(R::UntrustedIssuer);
        }
    }
    Ok(())
}

/// A directory string of the usual types: Russian certificates write names as
/// UTF8String and SNILS or INN as NumericString (older ones PrintableString or
/// BMPString).
fn directory_string(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::NumericString | Tag::Ia5String => {
            String::from_utf8(bytes.to_vec()).ok()
        }
        Tag::BmpString if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn identity(cert: &Certificate) -> Result<SignedIdentity, SignatureRefusal> {
    let tbs = cert.tbs_certificate();
    let get = |oid: ObjectIdentifier| {
        tbs.subject()
            .iter()
            .find(|atv| atv.oid == oid)
            .and_then(|atv| directory_string(&atv.value))
    };
    let snils = get(OID_SNILS)
        .filter(|s| s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(R::NoSnils)?;
    Ok(SignedIdentity {
        snils,
        surname: get(OID_SURNAME),
        given_name: get(OID_GIVEN_NAME),
        serial: tbs
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        issuer: tbs.issuer().to_string(),
    })
}

#[cfg(test)]
mod tests;
