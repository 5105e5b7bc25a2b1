//! SMS and e-mails "sent" through moto, read back from its state dump
//! (`GET /moto-api/data.json`): SMS under `sns.SMS`, e-mails under
//! `ses.Message`, `ses.RawMessage` and `ses.TemplateMessage`.
//!
//! moto records no send time, only the order in which messages were sent per
//! kind. Each message therefore carries `seq` (its position in moto's list for
//! that kind) and `observed_at` (when this gateway first saw it); the list is
//! ordered newest first by those.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    /// `sms` or `email`.
    pub channel: String,
    /// Phone number, or the `To` addresses joined by `, `.
    pub to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The message text; for an HTML-only e-mail, the HTML with tags removed.
    pub text: String,
    /// The HTML body of an e-mail, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_data: Option<String>,
    /// moto's message id.
    pub id: String,
    /// Position among the messages of the same kind, in sending order (0 = first).
    pub seq: usize,
    /// When this gateway first saw the message, RFC 3339.
    pub observed_at: String,
    #[serde(skip)]
    observed: OffsetDateTime,
    #[serde(skip)]
    recipients: Vec<String>,
}

impl OutboxMessage {
    /// Whether `address` is one of the recipients (e-mail addresses compared
    /// case-insensitively).
    pub fn is_for(&self, address: &str) -> bool {
        let address = address.trim();
        self.recipients
            .iter()
            .any(|r| r == address || (r.contains('@') && r.eq_ignore_ascii_case(address)))
    }
}

/// Remembers when messages were first seen and which ones were cleared.
#[derive(Debug, Default)]
pub struct OutboxState {
    first_seen: BTreeMap<String, OffsetDateTime>,
    cleared: BTreeSet<String>,
}

impl OutboxState {
    /// Turns moto's state dump into messages, newest first, without cleared ones.
    pub fn messages(&mut self, data: &Value, now: OffsetDateTime) -> Vec<OutboxMessage> {
        let mut out = parse(data);
        for m in &mut out {
            let seen = *self
                .first_seen
                .entry(format!("{}:{}", m.channel, m.id))
                .or_insert(now);
            m.observed = seen;
            m.observed_at = seen
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
        }
        out.retain(|m| !self.cleared.contains(&format!("{}:{}", m.channel, m.id)));
        out.sort_by(|a, b| {
            b.observed
                .cmp(&a.observed)
                .then_with(|| a.channel.cmp(&b.channel))
                .then_with(|| b.seq.cmp(&a.seq))
        });
        out
    }

    /// Hides every message currently in moto from later reads.
    pub fn clear(&mut self, data: &Value) {
        for m in parse(data) {
            self.cleared.insert(format!("{}:{}", m.channel, m.id));
        }
    }
}

fn list<'a>(
    data: &'a Value,
    service: &str,
    model: &str,
) -> impl Iterator<Item = (usize, &'a Value)> {
    data.get(service)
        .and_then(|s| s.get(model))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

fn message(channel: &str, id: String, seq: usize) -> OutboxMessage {
    OutboxMessage {
        channel: channel.to_string(),
        to: String::new(),
        from: None,
        subject: None,
        text: String::new(),
        html: None,
        cc: vec![],
        bcc: vec![],
        template: None,
        template_data: None,
        id,
        seq,
        observed_at: String::new(),
        observed: OffsetDateTime::UNIX_EPOCH,
        recipients: vec![],
    }
}

/// All messages in moto's dump, in no particular order.
pub fn parse(data: &Value) -> Vec<OutboxMessage> {
    let mut out = Vec::new();
    for (seq, sms) in list(data, "sns", "SMS") {
        let mut m = message("sms", text(sms, "message_id").unwrap_or_default(), seq);
        m.to = text(sms, "phone_number").unwrap_or_default();
        m.text = text(sms, "message").unwrap_or_default();
        m.recipients = vec![m.to.clone()];
        out.push(m);
    }
    for (seq, email) in list(data, "ses", "Message") {
        let mut m = message("email", text(email, "id").unwrap_or_default(), seq);
        let destinations = email.get("destinations");
        let to = strings(destinations.and_then(|d| d.get("ToAddresses")));
        m.cc = strings(destinations.and_then(|d| d.get("CcAddresses")));
        m.bcc = strings(destinations.and_then(|d| d.get("BccAddresses")));
        m.to = to.join(", ");
        m.recipients = to
            .into_iter()
            .chain(m.cc.clone())
            .chain(m.bcc.clone())
            .collect();
        m.from = text(email, "source");
        m.subject = text(email, "subject");
        // moto keeps one body per message: the HTML part when there is one.
        let body = text(email, "body").unwrap_or_default();
        set_body(&mut m, &body, looks_like_html(&body));
        out.push(m);
    }
    for (seq, email) in list(data, "ses", "RawMessage") {
        let mut m = message("email", text(email, "id").unwrap_or_default(), seq);
        m.from = text(email, "source");
        let raw = text(email, "raw_data").unwrap_or_default();
        let parsed = parse_mime(&raw);
        m.subject = parsed.header("subject");
        if m.from.is_none() {
            m.from = parsed.header("from");
        }
        let header_to = parsed.header("to").unwrap_or_default();
        m.to = if header_to.is_empty() {
            strings(email.get("destinations")).join(", ")
        } else {
            header_to
        };
        m.recipients = strings(email.get("destinations"));
        m.text = parsed.text.clone().unwrap_or_default();
        m.html = parsed.html.clone();
        if m.text.is_empty() {
            if let Some(html) = &m.html {
                m.text = strip_tags(html);
            }
        }
        out.push(m);
    }
    for (seq, email) in list(data, "ses", "TemplateMessage") {
        let mut m = message("email", text(email, "id").unwrap_or_default(), seq);
        let destinations = email.get("destinations");
        let to = strings(destinations.and_then(|d| d.get("ToAddresses")));
        m.to = to.join(", ");
        m.recipients = to;
        m.from = text(email, "source");
        m.template = text(email, "template");
        m.template_data = text(email, "template_data");
        out.push(m);
    }
    out
}

fn set_body(m: &mut OutboxMessage, body: &str, html: bool) {
    if html {
        m.text = strip_tags(body);
        m.html = Some(body.to_string());
    } else {
        m.text = body.to_string();
    }
}

fn looks_like_html(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    [
        "<html",
        "<body",
        "<p",
        "<div",
        "<br",
        "<b>",
        "<table",
        "<a ",
        "<span",
        "<h1",
        "<strong",
        "<!doctype",
    ]
    .iter()
    .any(|tag| lower.contains(tag))
}

/// Crude HTML-to-text, enough to read a code out of an HTML-only e-mail.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Default)]
struct Mime {
    headers: Vec<(String, String)>,
    text: Option<String>,
    html: Option<String>,
}

impl Mime {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn split_headers(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match raw.find("\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match raw.find("\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (headers, body)
}

/// Just enough MIME to find the text and HTML parts of a raw e-mail.
fn parse_mime(raw: &str) -> Mime {
    let (headers, body) = split_headers(raw);
    let mut mime = Mime {
        headers,
        ..Mime::default()
    };
    collect_parts(&mime.headers.clone(), body, &mut mime, 0);
    mime
}

fn collect_parts(headers: &[(String, String)], body: &str, mime: &mut Mime, depth: usize) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let content_type = get("content-type");
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/") && depth < 5 {
        let boundary = content_type
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.trim().trim_matches('"').to_string());
        if let Some(boundary) = boundary {
            let delimiter = format!("--{boundary}");
            for part in body.split(&delimiter).skip(1) {
                if part.starts_with("--") {
                    break;
                }
                let part = part.trim_start_matches(['\r', '\n']);
                let (part_headers, part_body) = split_headers(part);
                collect_parts(&part_headers, part_body, mime, depth + 1);
            }
            return;
        }
    }
    let decoded = decode_transfer(&get("content-transfer-encoding"), body);
    if lower.starts_with("text/html") {
        mime.html.get_or_insert(decoded);
    } else if lower.is_empty() || lower.starts_with("text/") {
        mime.text.get_or_insert(decoded.trim_end().to_string());
    }
}

fn decode_transfer(encoding: &str, body: &str) -> String {
    match encoding.trim().to_ascii_lowercase().as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| body.to_string())
        }
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.to_string(),
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            // Soft line break.
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(b) = body
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Trimmed from a real moto 5.2 dump after an SNS Publish and SES v2 SendEmail calls.
    fn dump() -> Value {
        json!({
            "ses": {
                "EmailIdentity": [{"email_identity": "no-reply@uslugi.example"}],
                "Message": [
                    {"body": "<b>1</b>", "destinations": {"ToAddresses": ["a@b.ru"]}, "id": "e1",
                     "source": "no-reply@uslugi.example", "subject": "Code"},
                    {"body": "text 2", "destinations": {"ToAddresses": ["c@b.ru"], "CcAddresses": ["d@b.ru"]},
                     "id": "e2", "source": "no-reply@uslugi.example", "subject": "Code2"}
                ],
                "RawMessage": [
                    {"destinations": ["c@b.ru"], "id": "r1",
                     "raw_data": "From: no-reply@uslugi.example\r\nTo: c@b.ru\r\nSubject: raw\r\n\r\nhello raw",
                     "source": "no-reply@uslugi.example"}
                ],
                "TemplateMessage": []
            },
            "sns": {
                "SMS": [
                    {"message": "Your code 123456", "message_id": "s1", "phone_number": "+79318702901"},
                    {"message": "Your code 654321", "message_id": "s2", "phone_number": "+79318702902"}
                ]
            }
        })
    }

    #[test]
    fn parses_sms_and_email() {
        let all = parse(&dump());
        let sms: Vec<_> = all.iter().filter(|m| m.channel == "sms").collect();
        assert_eq!(sms.len(), 2);
        assert_eq!(sms[0].to, "+79318702901");
        assert_eq!(sms[0].text, "Your code 123456");
        assert_eq!(sms[1].seq, 1);

        let e1 = all.iter().find(|m| m.id == "e1").unwrap();
        assert_eq!(e1.to, "a@b.ru");
        assert_eq!(e1.from.as_deref(), Some("no-reply@uslugi.example"));
        assert_eq!(e1.subject.as_deref(), Some("Code"));
        assert_eq!(e1.html.as_deref(), Some("<b>1</b>"));
        assert_eq!(e1.text, "1");
        let e2 = all.iter().find(|m| m.id == "e2").unwrap();
        assert_eq!(e2.text, "text 2");
        assert_eq!(e2.html, None);
        assert_eq!(e2.cc, vec!["d@b.ru".to_string()]);
        assert!(e2.is_for("D@B.ru"));
        let raw = all.iter().find(|m| m.id == "r1").unwrap();
        assert_eq!(raw.subject.as_deref(), Some("raw"));
        assert_eq!(raw.text, "hello raw");
    }

    #[test]
    fn newest_first_and_clearing() {
        let mut state = OutboxState::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let first = state.messages(&dump(), t0);
        assert_eq!(first.len(), 5);
        // Same observation time: within a channel, later sends come first.
        let sms: Vec<_> = first
            .iter()
            .filter(|m| m.channel == "sms")
            .map(|m| m.id.as_str())
            .collect();
        assert_eq!(sms, vec!["s2", "s1"]);

        let mut more = dump();
        more["sns"]["SMS"]
            .as_array_mut()
            .unwrap()
            .push(json!({"message": "Your code 111111", "message_id": "s3", "phone_number": "+79318702901"}));
        let later = state.messages(&more, t0 + time::Duration::seconds(5));
        assert_eq!(later[0].id, "s3");
        assert_eq!(later[0].observed_at, "2023-11-14T22:13:25Z");
        assert_eq!(later[1].observed_at, "2023-11-14T22:13:20Z");

        state.clear(&more);
        assert!(state.messages(&more, t0).is_empty());
    }

    #[test]
    fn serialized_shape() {
        let mut state = OutboxState::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let messages = state.messages(&dump(), t0);
        let sms = messages.iter().find(|m| m.id == "s1").unwrap();
        assert_eq!(
            serde_json::to_value(sms).unwrap(),
            json!({"channel": "sms", "to": "+79318702901", "text": "Your code 123456", "id": "s1",
                   "seq": 0, "observed_at": "2023-11-14T22:13:20Z"})
        );
    }

    #[test]
    fn multipart_raw_email() {
        let raw = "From: a@x.ru\r\nTo: b@y.ru\r\nSubject: Hi\r\nContent-Type: multipart/alternative; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCode =3D 12345=\r\n6\r\n--B\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+MTIzNDU2PC9iPg==\r\n--B--\r\n";
        let m = parse_mime(raw);
        assert_eq!(m.header("subject").as_deref(), Some("Hi"));
        assert_eq!(m.text.as_deref(), Some("Code = 123456"));
        assert_eq!(m.html.as_deref(), Some("<b>123456</b>"));
    }
}
