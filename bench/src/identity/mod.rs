//! Scenarios of the identity functions (accounts, sessions, recovery, authorizer), and the
//! citizens and fixtures they share.
//!
//! What a request needs in moto first — verification tokens, accounts, older sessions — is
//! made by [`fixtures::Fixtures`] with the shared crate's own services, the code the
//! functions run, so the bench never writes items in a layout of its own.

pub mod accounts;
pub mod authorizer;
pub mod fixtures;
pub mod recovery;
pub mod sessions;

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::proxy::Call;
use crate::scenario::{Expect, Step};

/// The functions that hash or verify passwords, for which the report times argon2id.
pub const HASHING_FUNCTIONS: [&str; 3] = ["accounts", "sessions", "recovery"];

/// How long before the request fixtures are dated (accounts registered, codes sent, first
/// sign-ins). Two hours puts the fixtures' codes outside every rate window the functions
/// check (an hour): a code the harness had sent to a phone a second ago would make the
/// function's own code to it a resend too early.
pub const FIXTURE_AGE: Duration = Duration::from_secs(2 * 3600);

/// A person who registers, signs in or recovers a password in a scenario. Every number
/// gives other contacts, so scenarios that share the tables never collide; each
/// scenario numbers its citizens from a base of its own.
#[derive(Debug, Clone)]
pub struct Citizen {
    pub last_name: &'static str,
    pub first_name: &'static str,
    pub middle_name: Option<&'static str>,
    /// As the citizen types it; the functions lower-case it.
    pub email: String,
    /// E.164.
    pub phone: String,
    pub password: String,
    pub security_question: &'static str,
    pub security_answer: &'static str,
}

/// (last name, first name, middle name, e-mail local part): names with a hyphen, `ё` and
/// no middle name among them, as the name rules allow.
const PEOPLE: [(&str, &str, Option<&str>, &str); 6] = [
    ("Иванова", "Анна", Some("Сергеевна"), "anna.ivanova"),
    ("Петров", "Дмитрий", Some("Александрович"), "d.petrov"),
    ("Смирнова", "Ольга", Some("Игоревна"), "Olga.Smirnova"),
    ("Кузнецов", "Алексей", None, "kuznetsov.alexey"),
    (
        "Соколова-Белова",
        "Мария",
        Some("Андреевна"),
        "maria.sokolova",
    ),
    ("Попов", "Артём", Some("Викторович"), "artem.popov"),
];

const QUESTIONS: [(&str, &str); 2] = [
    ("Девичья фамилия матери", "Петрова"),
    ("Кличка первого домашнего животного", "Барсик"),
];

impl Citizen {
    /// Citizen number `n` (below 10⁹: it is the phone's subscriber number).
    pub fn new(n: u32) -> Self {
        let (last_name, first_name, middle_name, local) = PEOPLE[n as usize % PEOPLE.len()];
        let (security_question, security_answer) = QUESTIONS[n as usize % QUESTIONS.len()];
        Self {
            last_name,
            first_name,
            middle_name,
            email: format!("{local}.{n}@mail.example"),
            phone: format!("+79{:09}", n % 1_000_000_000),
            // Letters and digits, not a contact, not in the breached list.
            password: format!("Lilac{n}harbour"),
            security_question,
            security_answer,
        }
    }

    /// The body of `POST /v1/accounts` for the citizen: the phone as typed, the password
    /// tried, and the tokens of the verified e-mail and phone.
    pub fn registration(
        &self,
        phone: &str,
        password: &str,
        email_token: &str,
        phone_token: &str,
    ) -> Json {
        let mut body = json!({
            "last_name": self.last_name,
            "first_name": self.first_name,
            "email": self.email,
            "phone": phone,
            "password": password,
            "security_question": self.security_question,
            "security_answer": self.security_answer,
            "email_verification_token": email_token,
            "phone_verification_token": phone_token,
        });
        if let Some(middle) = self.middle_name {
            body["middle_name"] = json!(middle);
        }
        body
    }

    /// The phone in one of the forms citizens type it in (`style` picks which).
    pub fn typed_phone(&self, style: u32) -> String {
        typed_phone(&self.phone, style)
    }
}

/// `+79310000001` as `+79310000001`, `8 (931) 000-00-01` or `+7 931 000-00-01`.
pub fn typed_phone(e164: &str, style: u32) -> String {
    let national = e164.strip_prefix("+7").unwrap_or(e164);
    if national.len() != 10 || !national.is_ascii() {
        return e164.to_string();
    }
    let (code, a, b, c) = (
        &national[..3],
        &national[3..6],
        &national[6..8],
        &national[8..],
    );
    match style % 3 {
        0 => e164.to_string(),
        1 => format!("8 ({code}) {a}-{b}-{c}"),
        _ => format!("+7 {code} {a}-{b}-{c}"),
    }
}

/// A step of an identity scenario.
pub fn step(case: &str, route: &str, event: Json, expect: Option<Expect>, argon2: u32) -> Step {
    Step::on_route(case, route, event, expect).hashing(argon2)
}

/// Whether one of the invocation's AWS calls was `operation` (`sesv2.SendEmail`, ...).
pub fn called(calls: &[Call], operation: &str) -> bool {
    calls.iter().any(|c| c.operation == operation)
}

/// The code in the SMS or e-mail one of the calls sent, if one did.
pub fn sent_code(calls: &[Call]) -> Option<String> {
    calls
        .iter()
        .filter_map(|c| c.message.as_deref())
        .find_map(crate::scenario::six_digit_code)
}

/// A string field of an answer, or an error naming what is missing.
pub fn field<'a>(body: &'a Json, name: &str, what: &str) -> anyhow::Result<&'a str> {
    body.get(name)
        .and_then(Json::as_str)
        .ok_or_else(|| anyhow::anyhow!("{what} has no `{name}`: {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{check_new_password, Email, PersonName, Phone};
    use shared::redact::Secret;

    #[test]
    fn citizens_pass_the_functions_rules() {
        for n in [0, 1, 2, 3, 4, 5, 500_000_123, 999_999_999] {
            let c = Citizen::new(n);
            PersonName::parse("last_name", c.last_name).unwrap();
            PersonName::parse("first_name", c.first_name).unwrap();
            if let Some(m) = c.middle_name {
                PersonName::parse("middle_name", m).unwrap();
            }
            Email::parse("email", &c.email).unwrap();
            let phone = Phone::parse("phone", &c.phone).unwrap();
            for style in 0..3 {
                let typed = c.typed_phone(style);
                assert_eq!(Phone::parse("phone", &typed).unwrap(), phone, "{typed}");
            }
            check_new_password(
                "password",
                &Secret::new(c.password.clone()),
                &[&c.email, &c.phone],
            )
            .unwrap();
        }
        assert_ne!(Citizen::new(7).phone, Citizen::new(8).phone);
        assert_ne!(Citizen::new(7).email, Citizen::new(13).email);
    }

    #[test]
    fn phones_in_typed_forms() {
        assert_eq!(typed_phone("+79310000001", 0), "+79310000001");
        assert_eq!(typed_phone("+79310000001", 1), "8 (931) 000-00-01");
        assert_eq!(typed_phone("+79310000001", 2), "+7 931 000-00-01");
    }
}
