//! The sandbox certification authority: its certificate and, published on purpose, its
//! key (`shared/sandbox/`), so that tests and sandbox deployments can issue a citizen a
//! certificate and sign a challenge as a citizen's signing plug-in would. Only the
//! sandbox verifier trusts it, and only where sandboxes are allowed.

use std::time::SystemTime;

use base64::Engine as _;
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, DecodePem, Encode, Tag};
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use time::OffsetDateTime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::{OID_DATA, OID_GIVEN_NAME, OID_INN, OID_SHA256, OID_SNILS, OID_SURNAME};

/// The sandbox authority's certificate (P-256, valid to the end of 2049).
pub const CA_CERTIFICATE_PEM: &str = include_str!("../../../sandbox/signature-ca.cert.pem");
/// Its key: published, since only sandboxes trust it.
const CA_KEY_PEM: &str = include_str!("../../../sandbox/signature-ca.key.pem");

const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

#[derive(Debug, thiserror::Error)]
#[error("sandbox certificate: {0}")]
pub struct IssueError(String);

fn fail(e: impl std::fmt::Display) -> IssueError {
    IssueError(e.to_string())
}

/// Who a certificate is issued to, as a qualified certificate's subject names them.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// 11 digits; `None` makes a certificate without SNILS.
    pub snils: Option<&'a str>,
    pub surname: &'a str,
    /// The first name and the patronymic, separated by a space.
    pub given_name: &'a str,
}

/// A certification authority that can issue signing certificates.
pub struct Authority {
    key: SigningKey,
    certificate: Certificate,
}

/// A citizen's certificate with its key: what a signing token holds.
pub struct SignerCertificate {
    key: SigningKey,
    certificate: Certificate,
}

/// A certificate profile of our own: issuer and subject as given, basic constraints and
/// key usage of an authority or of a signer (qualified certificates: digitalSignature
/// and nonRepudiation).
struct Profile {
    issuer: Name,
    subject: Name,
    authority: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let usage = if self.authority {
            KeyUsages::KeyCertSign | KeyUsages::CRLSign
        } else {
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
        };
        Ok(vec![
            Extension {
                extn_id: OID_BASIC_CONSTRAINTS,
                critical: true,
                extn_value: OctetString::new(
                    BasicConstraints {
                        ca: self.authority,
                        path_len_constraint: self.authority.then_some(0),
                    }
                    .to_der()?,
                )?,
            },
            Extension {
                extn_id: OID_KEY_USAGE,
                critical: true,
                extn_value: OctetString::new(KeyUsage(usage).to_der()?)?,
            },
        ])
    }
}

fn name(attributes: &[(ObjectIdentifier, Tag, &str)]) -> Result<Name, IssueError> {
    let mut sequence = RdnSequence::default();
    for (oid, tag, value) in attributes {
        let atv = AttributeTypeAndValue {
            oid: *oid,
            value: Any::new(*tag, value.as_bytes()).map_err(fail)?,
        };
        sequence.push(RelativeDistinguishedName::try_from(vec![atv]).map_err(fail)?);
    }
    Name::from_der(&sequence.to_der().map_err(fail)?).map_err(fail)
}

fn validity(from: OffsetDateTime, to: OffsetDateTime) -> Result<Validity, IssueError> {
    let time = |t: OffsetDateTime| Time::try_from(SystemTime::from(t)).map_err(fail);
    Ok(Validity::new(time(from)?, time(to)?))
}

fn random_serial() -> Result<SerialNumber, IssueError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(fail)?;
    // Positive: the top bit clear.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).map_err(fail)
}

impl Authority {
    /// The published sandbox authority.
    pub fn sandbox() -> Result<Self, IssueError> {
        Ok(Self {
            key: SigningKey::from_pkcs8_pem(CA_KEY_PEM).map_err(fail)?,
            certificate: Certificate::from_pem(CA_CERTIFICATE_PEM).map_err(fail)?,
        })
    }

    /// A new self-signed authority named `common_name`, which no deployment trusts.
    pub fn untrusted(common_name: &str) -> Result<Self, IssueError> {
        let now = OffsetDateTime::now_utc();
        let subject = name(&[
            (OID_COUNTRY, Tag::PrintableString, "RU"),
            (OID_COMMON_NAME, Tag::Utf8String, common_name),
        ])?;
        let key = SigningKey::generate();
        let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(fail)?;
        let profile = Profile {
            issuer: subject.clone(),
            subject,
            authority: true,
        };
        let builder = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity(
                now - time::Duration::days(1),
                now + time::Duration::days(365),
            )?,
            spki,
        )
        .map_err(fail)?;
        let certificate = builder.build::<_, DerSignature>(&key).map_err(fail)?;
        Ok(Self { key, certificate })
    }

    /// The subject of this authority, as the issuer of what it issues.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Issues `holder` a signing certificate valid from `not_before` to `not_after`.
    pub fn issue(
        &self,
        holder: &Holder<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<SignerCertificate, IssueError> {
        let common = format!("{} {}", holder.surname, holder.given_name);
        let mut attributes = vec![
            (OID_COUNTRY, Tag::PrintableString, "RU"),
            (OID_COMMON_NAME, Tag::Utf8String, common.as_str()),
            (OID_SURNAME, Tag::Utf8String, holder.surname),
            (OID_GIVEN_NAME, Tag::Utf8String, holder.given_name),
            (OID_INN, Tag::NumericString, "500100732259"),
        ];
        if let Some(snils) = holder.snils {
            attributes.push((OID_SNILS, Tag::NumericString, snils));
        }
        let key = SigningKey::generate();
        let spki = SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(fail)?;
        let profile = Profile {
            issuer: self.certificate.tbs_certificate().subject().clone(),
            subject: name(&attributes)?,
            authority: false,
        };
        let builder = CertificateBuilder::new(
            profile,
            random_serial()?,
            validity(not_before, not_after)?,
            spki,
        )
        .map_err(fail)?;
        let certificate = builder.build::<_, DerSignature>(&self.key).map_err(fail)?;
        Ok(SignerCertificate { key, certificate })
    }
}

impl SignerCertificate {
    /// A detached CMS signature over `content`, with the certificate in it, as base64 of
    /// DER: what a citizen's signing plug-in hands the browser.
    pub fn sign_detached(&self, content: &[u8]) -> Result<String, IssueError> {
        let encapsulated = EncapsulatedContentInfo {
            econtent_type: OID_DATA,
            econtent: None,
        };
        let tbs = self.certificate.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        let sha256 = AlgorithmIdentifierOwned {
            oid: OID_SHA256,
            parameters: None,
        };
        let digest = Sha256::digest(content);
        let signer = SignerInfoBuilder::new(sid, sha256.clone(), &encapsulated, Some(&digest))
            .map_err(fail)?;
        let signed = SignedDataBuilder::new(&encapsulated)
            .add_digest_algorithm(sha256)
            .map_err(fail)?
            .add_certificate(CertificateChoices::Certificate(self.certificate.clone()))
            .map_err(fail)?
            .add_signer_info::<SigningKey, DerSignature>(signer, &self.key)
            .map_err(fail)?
            .build()
            .map_err(fail)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signed.to_der().map_err(fail)?))
    }
}
