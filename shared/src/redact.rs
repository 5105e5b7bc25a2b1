//! The redaction rule: phone numbers, e-mail addresses, document numbers (SNILS,
//! passport, INN), card numbers, confirmation codes and tokens never reach a log line in
//! clear, at any level.
//!
//! Two layers enforce it. Types that carry such values ([`crate::domain::Phone`],
//! [`crate::domain::Email`], [`Secret`]) mask themselves in `Debug`/`Display` used by
//! logging. And every log line passes through [`scrub`] on its way out (see
//! [`crate::logging`]), which masks anything that still looks like a Russian phone
//! number, an e-mail address, a SNILS, a passport or INN, a card number or one of our
//! tokens — a net for the value someone logs as a plain string by mistake. The writer
//! scrubs every line whatever its level, so turning on `debug` reveals nothing more.

use std::borrow::Cow;
use std::fmt;

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it (hashing, sending).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Prefix of every bearer-like token the system issues, so that the log scrubber can
/// recognise one wherever it appears.
pub const TOKEN_PREFIXES: &[&str] = &["vt_", "st_", "lc_", "op_", "bk_", "tok_", "ctok_", "wc_"];

/// Masks phone numbers, e-mail addresses and tokens in `line`.
pub fn scrub(line: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(line.len());
    let bytes = line.as_bytes();
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = token_at(line, i) {
            out.push_str("[token]");
            i += len;
            changed = true;
            continue;
        }
        if let Some(len) = card_at(bytes, i) {
            out.push_str("[card]");
            i += len;
            changed = true;
            continue;
        }
        if let Some(len) = phone_at(bytes, i) {
            out.push_str("[phone]");
            i += len;
            changed = true;
            continue;
        }
        if let Some((len, mask)) = document_at(bytes, i) {
            out.push_str(mask);
            i += len;
            changed = true;
            continue;
        }
        if bytes[i] == b'@' {
            if let Some((start, end)) = email_around(bytes, i) {
                // Drop the local part already copied, then write the mask.
                let keep = out.len() - (i - start);
                out.truncate(keep);
                out.push_str("[email]");
                i = end;
                changed = true;
                continue;
            }
        }
        let ch_len = utf8_len(bytes[i]);
        out.push_str(&line[i..i + ch_len]);
        i += ch_len;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(line)
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A card number at `i`: 13 to 19 digits, spaces or hyphens between them allowed,
/// passing the Luhn check, and not part of a longer number.
fn card_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
        return None;
    }
    let (digits, len) = digits_from(bytes, i, 19)?;
    ((13..=19).contains(&digits.len()) && crate::domain::luhn_valid(&digits)).then_some(len)
}

/// The digits from `i` on, single spaces or hyphens between them allowed, and the length
/// of text they span; `None` once there are more than `max`.
fn digits_from(bytes: &[u8], i: usize, max: usize) -> Option<(String, usize)> {
    let mut digits = String::new();
    let mut end = i;
    let mut j = i;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            digits.push(char::from(b));
            j += 1;
            end = j;
        } else if matches!(b, b' ' | b'-') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
            j += 1;
        } else {
            break;
        }
        if digits.len() > max {
            return None;
        }
    }
    Some((digits, end - i))
}

fn token_at(line: &str, i: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    if i > 0 && is_word_byte(bytes[i - 1]) {
        return None;
    }
    let rest = &line[i..];
    let prefix = TOKEN_PREFIXES.iter().find(|p| rest.starts_with(*p))?;
    let body = rest[prefix.len()..]
        .bytes()
        .take_while(|b| is_word_byte(*b))
        .count();
    (body >= 16).then_some(prefix.len() + body)
}

/// A Russian phone number starting at `i`: an optional `+`, then 11 digits starting with
/// 7 or 8, or 10 digits starting with 9, with spaces, hyphens and brackets allowed
/// between digits. Longer digit runs (UINs, account numbers) are left alone.
fn phone_at(bytes: &[u8], i: usize) -> Option<usize> {
    // Only a whole word: digits inside an identifier (a UUID, a hex hash) are not a phone.
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || matches!(bytes[i - 1], b'-' | b'_')) {
        return None;
    }
    let mut j = i;
    if bytes.get(j) == Some(&b'+') {
        j += 1;
    }
    let first = *bytes.get(j)?;
    if !first.is_ascii_digit() {
        return None;
    }
    let mut digits = 0;
    let mut end = j;
    while j < bytes.len() {
        let b = bytes[j];
        if b.is_ascii_digit() {
            digits += 1;
            j += 1;
            end = j;
        } else if matches!(b, b' ' | b'-' | b'(' | b')') && digits > 0 && digits < 11 {
            j += 1;
        } else {
            break;
        }
    }
    let shaped = match first {
        b'7' | b'8' => digits == 11,
        b'9' => digits == 10,
        _ => false,
    };
    let glued_to_word = bytes
        .get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    (shaped && !glued_to_word).then_some(end - i)
}

/// A document number at `i`, as a whole word: 10 to 12 digits with single spaces or
/// hyphens between them allowed, read as a SNILS (11 digits with a valid checksum, also
/// `123-456-789 01`), a passport or an organisation's INN (10 digits, `45 10 123456`) or
/// a person's INN (12 digits with valid check digits). Returns its length and mask.
/// A ten-digit number is masked whatever it is: the code logs no Unix seconds, and a
/// passport has no check digit to tell it from anything else.
fn document_at(bytes: &[u8], i: usize) -> Option<(usize, &'static str)> {
    let word_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if !bytes[i].is_ascii_digit() || (i > 0 && word_byte(&bytes[i - 1])) {
        return None;
    }
    let (digits, len) = digits_from(bytes, i, 12)?;
    let end = i + len;
    if bytes
        .get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    let text = std::str::from_utf8(&bytes[i..end]).ok()?;
    let mask = match digits.len() {
        10 => "[document]",
        11 if crate::domain::Snils::parse("", text).is_ok() => "[snils]",
        12 if crate::domain::Inn::parse("", &digits).is_ok() => "[inn]",
        _ => return None,
    };
    Some((end - i, mask))
}

fn email_around(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let is_local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let is_domain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let mut start = at;
    while start > 0 && is_local(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && is_domain(bytes[end]) {
        end += 1;
    }
    let domain = &bytes[at + 1..end];
    (start < at && domain.contains(&b'.')).then_some((start, end))
}

#[cfg(test)]
mod tests {
    #[test]
    fn card_numbers_and_gateway_tokens_are_masked() {
        assert_eq!(
            scrub("pan 4242 4242 4242 4242 and tok_0123456789abcdef0123"),
            "pan [card] and [token]"
        );
        // A UIN is not a card number.
        assert_eq!(
            scrub("uin 18810177200000012341"),
            "uin 18810177200000012341"
        );
    }

    use super::*;

    #[test]
    fn masks_phone_numbers_in_every_usual_form() {
        for phone in [
            "+79318702901",
            "89318702901",
            "+7 931 870-29-01",
            "8 (931) 870-29-01",
            "9318702901",
        ] {
            let line = format!("sent to {phone} ok");
            assert_eq!(scrub(&line), "sent to [phone] ok", "{phone}");
        }
    }

    #[test]
    fn leaves_other_numbers_alone() {
        for line in [
            "uin 18810177220000000015",
            "took 1234 ms",
            "status 503",
            "took 12345678 ms",
            r#"{"code_id":"c8123456-7890-4abc-8def-0123456789ab"}"#,
            "id 91234567-89ab-4cde-8123-456789012345",
            "id 81234567-890a-4bcd-9f12-34567890a123",
        ] {
            assert_eq!(scrub(line), line);
        }
    }

    #[test]
    fn masks_snils_passports_and_inns() {
        for (line, masked) in [
            ("snils 112-233-445 95 saved", "snils [snils] saved"),
            ("snils 11223344595 saved", "snils [snils] saved"),
            (
                r#"{"passport":"4510123456"}"#,
                r#"{"passport":"[document]"}"#,
            ),
            ("passport 45 10 123456 ok", "passport [document] ok"),
            ("passport 4510 123456 ok", "passport [document] ok"),
            ("inn 7707083893 ok", "inn [document] ok"),
            ("inn 500100732259 ok", "inn [inn] ok"),
        ] {
            assert_eq!(scrub(line), masked, "{line}");
        }
        // Not a SNILS: the checksum does not match.
        assert_eq!(scrub("n 11223344596"), "n 11223344596");
    }

    #[test]
    fn masks_emails_and_tokens() {
        assert_eq!(
            scrub(r#"{"to":"Ivan.Petrov@mail.ru","x":1}"#),
            r#"{"to":"[email]","x":1}"#
        );
        assert_eq!(
            scrub("token vt_AbCdEfGhIjKlMnOpQrStUv rest"),
            "token [token] rest"
        );
        assert_eq!(
            scrub("challenge lc_AbCdEfGhIjKlMnOpQrStUv rest"),
            "challenge [token] rest"
        );
        assert_eq!(scrub("a@b is not an address"), "a@b is not an address");
    }

    #[test]
    fn keeps_cyrillic_text_intact() {
        assert_eq!(
            scrub("Код отправлен на +79318702901"),
            "Код отправлен на [phone]"
        );
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("123456".to_string());
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
    }
}
