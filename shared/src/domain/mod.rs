//! Domain types: values that are valid by construction.

mod card;
mod charge;
mod contact;
mod documents;
mod ids;
mod level;
mod name;
mod organisation;
mod password;
mod phone;
mod text;

pub use card::{find_card_number, looks_like_card_number, luhn_valid};
pub(crate) use charge::charge_text;
pub use charge::{canonical, payer_key, roubles, Category, Payee, Payer, PayerKind};
pub use contact::{Channel, Destination, Email, Purpose};
pub use documents::{
    check_expiry_date, check_international_passport_validity, check_issue_date,
    passport_replacement, Country, ForeignDocumentNumber, InternationalPassport, MilitaryId,
    FOREIGN_NUMBER_MAX, INTERNATIONAL_PASSPORT_YEARS, PASSPORT_REPLACEMENT_AGES,
};
pub use documents::{
    check_passport_issue_date, BirthCertificate, DepartmentCode, DriverLicence, Inn, InnKind, Kpp,
    OmsPolicy, Passport, PassportNumber, PassportSeries, Snils, Uin, VehicleCertificate,
    VehiclePlate,
};
pub use ids::MessageId;
pub use ids::{
    requested, AccountId, AutopayId, BillerId, ChildId, CodeId, FactorId, IdError, MethodId,
    OperatorId, PaymentId, RefundId, SessionId, SubmissionId, TemplateId, VehicleId,
};
pub use ids::{InvitationId, OrganisationId};
pub use level::{AccountLevel, CredentialStrength, FACTOR_SETTLING_SECS};
pub use name::{PersonName, MAX_NAME_CHARS};
pub use organisation::{
    Ogrn, Ogrnip, OrgAction, OrgRole, OrganisationIdentity, OrganisationKind, Owner,
};
pub use password::{
    check_new_password, common_password_count, normalise_security_answer, MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
};
pub use phone::Phone;
pub use text::{free_text, is_invisible, nfc, nfkc, refuse_invisible};
