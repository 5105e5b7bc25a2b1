//! Identifiers of the things the services keep: each a checked string of the shape it is
//! minted in, so an account id cannot be passed where a payment id is meant, and a
//! malformed one is refused where it enters (a request, an authorizer context, a stored
//! item) instead of travelling on.
//!
//! Three shapes are minted:
//! - a UUID in its canonical form (lower-case, hyphenated): accounts, payments, charges'
//!   billers, operators, confirmations' letters, verification submissions;
//! - a prefix and a UUID's 32 lower-case hex digits: saved methods (`pm_`), templates
//!   (`tpl_`), autopays (`ap_`);
//! - a keyed hash (43 characters of URL-safe base64): sessions (of the bearer token),
//!   children (of the birth certificate), vehicles (of the account and the certificate).
//!
//! Every id stores and serialises as its string, unchanged: the data model does not see
//! the types.

use std::fmt;

/// An id that is not of its kind's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} id")]
pub struct IdError {
    /// Which kind of id was expected (`account`, `payment`, …).
    pub kind: &'static str,
}

/// An id a request names (in its path or body): one of another shape names nothing, so
/// it is answered as an unknown one would be, `what` not found.
pub fn requested<T>(raw: &str, what: &'static str) -> Result<T, crate::AppError>
where
    T: std::str::FromStr<Err = IdError>,
{
    raw.parse().map_err(|_| crate::AppError::NotFound(what))
}

/// The canonical form of a UUID (lower-case, hyphenated), and only that.
fn canonical_uuid(s: &str) -> Option<String> {
    uuid::Uuid::try_parse(s)
        .ok()
        .map(|u| u.hyphenated().to_string())
        .filter(|c| c == s)
}

/// Any form of a UUID the `uuid` crate reads, written back canonically.
fn any_uuid(s: &str) -> Option<String> {
    uuid::Uuid::try_parse(s)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// `prefix` then 32 lower-case hex digits (a UUID written `simple`).
fn prefixed_uuid(prefix: &str, s: &str) -> Option<String> {
    s.strip_prefix(prefix)
        .filter(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .map(|_| s.to_string())
}

/// A keyed hash as [`crate::crypto::Hasher`] writes it: 32 bytes in URL-safe base64
/// without padding.
fn keyed_hash(s: &str) -> Option<String> {
    (s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| s.to_string())
}

fn minted_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// An id type: a string of one shape, read by `$read` (which gives back the form to keep,
/// or `None`), with its kind's name for errors.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $read:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The kind's name, as errors say it.
            pub const KIND: &'static str = $kind;

            pub fn parse(s: &str) -> Result<Self, IdError> {
                let read: fn(&str) -> Option<String> = $read;
                read(s).map(Self).ok_or(IdError { kind: $kind })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        /// Tests name things briefly (`"acc-1"`); only they may skip the check.
        #[cfg(test)]
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }

        /// Read-only: an id reads as its string where one is wanted (a key, a log
        /// field); a string never passes for an id.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id!(
    /// A citizen's account: a UUID minted at registration.
    AccountId, "account", canonical_uuid
);
id!(
    /// A payment: a UUID (version 7, so ids sort by time) minted when it is created.
    PaymentId, "payment", canonical_uuid
);
id!(
    /// A session: the keyed hash of its bearer token.
    SessionId, "session", keyed_hash
);
id!(
    /// A sent code. Clients may write the UUID in any form the standard allows; it is
    /// kept canonical, as it was minted.
    CodeId, "code", any_uuid
);
id!(
    /// A saved payment method: `pm_` and a UUID's hex digits.
    MethodId, "method", |s| prefixed_uuid("pm_", s)
);
id!(
    /// A payment template: `tpl_` and a UUID's hex digits.
    TemplateId, "template", |s| prefixed_uuid("tpl_", s)
);
id!(
    /// An autopay: `ap_` and a UUID's hex digits.
    AutopayId, "autopay", |s| prefixed_uuid("ap_", s)
);
id!(
    /// An authentication app enrolled as a second factor: `af_` and a UUID's hex digits.
    FactorId, "factor", |s| prefixed_uuid("af_", s)
);
id!(
    /// A refund of a payment: `rf_` and a UUID's hex digits.
    RefundId, "refund", |s| prefixed_uuid("rf_", s)
);
id!(
    /// A child: the keyed hash of the birth certificate, the same for every parent.
    ChildId, "child", keyed_hash
);
id!(
    /// A citizen's vehicle: the keyed hash of the account and the registration certificate.
    VehicleId, "vehicle", keyed_hash
);
id!(
    /// An operator who confirms identities in person: a UUID minted when it is created.
    OperatorId, "operator", canonical_uuid
);
id!(
    /// A biller that issues charges: a UUID minted when it is registered.
    BillerId, "biller", canonical_uuid
);
id!(
    /// A submission of data to a registry check (a verification job): a UUID.
    SubmissionId, "submission", canonical_uuid
);

macro_rules! minted_uuid_ids {
    ($($name:ident),*) => {$(
        impl $name {
            /// A new id, as the service mints them.
            pub fn new() -> Self {
                Self(minted_uuid())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    )*};
}

id!(
    /// An organisation in the corporate cabinet: `org_` and a UUID's hex digits.
    OrganisationId, "organisation", |s| prefixed_uuid("org_", s)
);
id!(
    /// An invitation to join an organisation: `inv_` and a UUID's hex digits.
    InvitationId, "invitation", |s| prefixed_uuid("inv_", s)
);

minted_uuid_ids!(AccountId, CodeId, OperatorId, BillerId, SubmissionId);

impl PaymentId {
    /// A new payment id: a UUID of version 7, so ids sort by their time.
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }
}

impl Default for PaymentId {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! minted_prefixed_ids {
    ($($name:ident = $prefix:literal),*) => {$(
        impl $name {
            /// A new id, as the service mints them.
            pub fn new() -> Self {
                Self(format!(concat!($prefix, "{}"), uuid::Uuid::new_v4().simple()))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    )*};
}

minted_prefixed_ids!(
    MethodId = "pm_",
    TemplateId = "tpl_",
    AutopayId = "ap_",
    FactorId = "af_",
    RefundId = "rf_"
);
minted_prefixed_ids!(OrganisationId = "org_", InvitationId = "inv_");

id!(
    /// A message in a citizen's inbox: `msg_` and 32 hex digits, random or derived from
    /// the event the message tells of (see [`MessageId::of_event`]).
    MessageId, "message", |s| prefixed_uuid("msg_", s)
);
minted_prefixed_ids!(MessageId = "msg_");

impl MessageId {
    /// The id of the message that tells of `event` (`bill:{uin}`, `payment:{id}`): the
    /// same every time the event is told again, so a retried worker finds the message it
    /// kept before instead of keeping a second one.
    pub fn of_event(event: &str) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("inbox-message\0{event}").as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("msg_{hex}"))
    }
}

macro_rules! keyed_hash_ids {
    ($($name:ident),*) => {$(
        impl $name {
            /// The id the crate's [`crate::crypto::Hasher`] computed: a keyed hash, always
            /// of the shape.
            pub(crate) fn from_hash(hash: String) -> Self {
                Self(hash)
            }
        }
    )*};
}

keyed_hash_ids!(SessionId, ChildId, VehicleId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_read_back() {
        for id in [AccountId::new().to_string(), PaymentId::new().to_string()] {
            assert_eq!(AccountId::parse(&id).unwrap().as_str(), id);
        }
        let method = MethodId::new();
        assert_eq!(MethodId::parse(method.as_str()).unwrap(), method);
        assert!(method.as_str().starts_with("pm_"));
        assert_eq!(
            TemplateId::parse(TemplateId::new().as_str())
                .unwrap()
                .as_str()
                .len(),
            36
        );
        assert!(AutopayId::parse(AutopayId::new().as_str()).is_ok());
    }

    #[test]
    fn malformed_ids_are_refused_with_their_kind() {
        assert_eq!(AccountId::parse("").unwrap_err().kind, "account");
        assert!(AccountId::parse("not-a-uuid").is_err());
        // Only the canonical form: an upper-case UUID was never minted.
        assert!(PaymentId::parse("0190D6A2-1B2C-7D3E-8F40-1234567890AB").is_err());
        assert!(MethodId::parse("tpl_0123456789abcdef0123456789abcdef").is_err());
        assert!(MethodId::parse("pm_0123456789ABCDEF0123456789abcdef").is_err());
        assert!(SessionId::parse("short").is_err());
        assert!(SessionId::parse(&"a".repeat(43)).is_ok());
        assert!(ChildId::parse(&format!("{}=", "a".repeat(42))).is_err());
    }

    #[test]
    fn a_code_id_is_kept_canonical() {
        let id = CodeId::parse("0190D6A2-1B2C-7D3E-8F40-1234567890AB").unwrap();
        assert_eq!(id.as_str(), "0190d6a2-1b2c-7d3e-8f40-1234567890ab");
    }

    #[test]
    fn serde_goes_through_the_checks() {
        let id = AccountId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<AccountId>("\"nope\"").is_err());
    }
}
