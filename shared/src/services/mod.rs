//! Business rules. Services depend on small traits, implemented in [`crate::adapters`].

pub mod autopays;
pub mod bill_notices;
pub mod billers;
pub mod bills;
pub mod charges;
pub mod codes;
pub mod confirmation;
pub mod e_signature;
pub mod household;
pub mod identity;
pub mod inbox;
pub mod notices;
pub mod organisations;
pub mod payments;
pub mod profile;
pub mod reminders;
pub mod restoration;
pub mod runs;
pub mod verification;

use crate::crypto::{Credential, Hasher, Identifier};

/// Unix seconds as RFC 3339 (`2026-11-26T10:00:00Z`), as the API writes times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Moscow time, in which billers date their bills and discounts, and citizens' days run.
pub const MOSCOW: time::UtcOffset = match time::UtcOffset::from_hms(3, 0, 0) {
    Ok(offset) => offset,
    Err(_) => time::UtcOffset::UTC,
};

/// A configured duration as whole seconds, the unit stored times are counted in; a
/// duration too long for an `i64` (never configured) stands for "forever". One
/// conversion for every service that adds a limit's window to a Unix time.
pub(crate) fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The answer to a change of a thing named by id (a removal, a revocation): done, or
/// `NotFound` naming the thing when the store found none, as for a second removal.
pub(crate) fn found_or_not(found: bool, what: &'static str) -> Result<(), crate::AppError> {
    if found {
        Ok(())
    } else {
        Err(crate::AppError::NotFound(what))
    }
}

/// The principal (an operator, a biller) an API key belongs to. The key must carry the
/// principal's `prefix` and a sane length before anything is hashed; a key issued before
/// the HMAC key's last rotation is stored under an older version, so each version present
/// is tried, the current one first, with `lookup` (the store's read by keyed hash).
pub(crate) async fn principal_by_key<T, F, Fut>(
    hasher: &Hasher,
    key: &str,
    prefix: &str,
    credential: Credential,
    lookup: F,
) -> Result<T, crate::AppError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, StoreError>>,
{
    if !key.starts_with(prefix) || key.len() > 128 {
        return Err(crate::AppError::Unauthenticated);
    }
    for key_hash in hasher.credential_lookups(credential, &[key]) {
        if let Some(principal) = lookup(key_hash).await? {
            return Ok(principal);
        }
    }
    Err(crate::AppError::Unauthenticated)
}

/// The key under which a phone or e-mail address is known: in send logs, verification
/// tokens and login items alike, so a token can be matched to the contact it confirmed.
/// A keyed hash, so the table holds no contact in clear outside the account item.
pub fn destination_key(hasher: &Hasher, canonical: &str) -> String {
    hasher.identifier(Identifier::Destination, &[canonical])
}

/// The login key of a SNILS: the same keyed hash as phones and e-mails, so a login by
/// SNILS finds the account like any other login.
pub fn snils_login_key(hasher: &Hasher, snils: &str) -> String {
    destination_key(hasher, snils)
}

/// The key a new verification token is stored under.
pub fn verification_token_key(hasher: &Hasher, token: &str) -> String {
    hasher.credential(Credential::VerificationToken, &[token])
}

/// The keys a verification token handed back by a client may be stored under: one per
/// HMAC key version, the current one first.
pub fn verification_token_keys(hasher: &Hasher, token: &str) -> Vec<String> {
    hasher.credential_lookups(Credential::VerificationToken, &[token])
}

/// A per-account cap on things of one kind (saved methods, templates, autopays, saved
/// bills). The store keeps a counter in the account's partition and changes it in the
/// same transaction as the thing, under a condition, so parallel adds cannot pass it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub limit: usize,
    /// How many the caller listed: the counter's start for an account written before
    /// the counter existed.
    pub seen: usize,
}

impl Cap {
    /// The refusal of a full cap; `what` names the things in the problem body
    /// (`payment methods`). One place builds it, so a check made before an add and the
    /// store's answer to the add refuse alike.
    pub fn too_many(&self, what: &'static str) -> crate::AppError {
        crate::AppError::TooMany {
            what,
            limit: self.limit,
        }
    }

    /// Refuses up front when the things the caller listed already fill the cap, before
    /// anything costly (a gateway call) is done for an add that cannot be written.
    pub fn check_room(&self, what: &'static str) -> Result<(), crate::AppError> {
        if self.seen >= self.limit {
            Err(self.too_many(what))
        } else {
            Ok(())
        }
    }

    /// What the store's answer to an add under this cap means for the caller: a full cap
    /// refuses; an add, or a retried write that finds its thing there, succeeds.
    pub fn admit(&self, added: CappedAdd, what: &'static str) -> Result<(), crate::AppError> {
        match added {
            CappedAdd::Added | CappedAdd::AlreadyThere => Ok(()),
            CappedAdd::Full => Err(self.too_many(what)),
        }
    }
}

/// What an add under a [`Cap`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CappedAdd {
    Added,
    /// The cap was reached (perhaps by a parallel add).
    Full,
    /// The thing was there already; nothing was counted.
    AlreadyThere,
}

/// Failure of a store operation, as services need to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold: somebody else changed the item first.
    #[error("conditional write lost a race")]
    Conflict,
    /// The store could not be reached or refused for load; worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request itself was wrong (a bug, not a condition of the world).
    #[error("store rejected the request: {0}")]
    Rejected(String),
    /// A stored value is not of the shape the code writes (an id, a kind): the item was
    /// damaged or written by something else. Never read as a default.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

impl From<StoreError> for crate::AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => crate::AppError::StoreUnavailable(e.to_string()),
            StoreError::Unavailable(m) => crate::AppError::StoreUnavailable(m),
            StoreError::Rejected(m) | StoreError::Corrupt(m) => crate::AppError::Internal(m),
        }
    }
}
