//! The AWS wire protocols, as far as the counting proxy needs them: naming the
//! operation of a request the SDK sent, and reading the message of an SMS or e-mail.

use serde_json::Value as Json;

/// `dynamodb.TransactWriteItems`, `sns.Publish`, `sesv2.SendEmail`, ...
pub fn operation(method: &str, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut service = header("authorization")
        .and_then(credential_service)
        .unwrap_or("unknown")
        .to_string();
    // SES v1 and v2 share the signing name; v2 is the REST API under /v2/.
    if service == "ses" && path.starts_with("/v2/") {
        service = "sesv2".into();
    }
    let operation = if let Some(target) = header("x-amz-target") {
        target.rsplit('.').next().unwrap_or(target).to_string()
    } else if header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        form_value(body, "Action").unwrap_or_else(|| "UnknownAction".into())
    } else {
        rest_operation(&service, method, path).unwrap_or_else(|| format!("{method} {path}"))
    };
    format!("{service}.{operation}")
}

/// The service in `Credential=AKID/20250101/us-east-1/dynamodb/aws4_request`.
fn credential_service(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    scope.split('/').nth(3)
}

/// Operations of REST-style APIs the functions call.
fn rest_operation(service: &str, method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let name = match (service, method, path) {
        ("sesv2", "POST", "/v2/email/outbound-emails") => "SendEmail",
        ("sesv2", "POST", "/v2/email/outbound-bulk-emails") => "SendBulkEmail",
        ("sesv2", "POST", "/v2/email/identities") => "CreateEmailIdentity",
        _ => return None,
    };
    Some(name.to_string())
}

/// The text of an SMS (`sns.Publish`), an e-mail (`sesv2.SendEmail`) or a queued message
/// (`sqs.SendMessage`: a letter for the post), if the request is one.
pub fn message_text(operation: &str, body: &[u8]) -> Option<String> {
    match operation {
        "sns.Publish" => form_value(body, "Message"),
        // The JSON protocol of current SDKs, or the query protocol of older ones.
        "sqs.SendMessage" => serde_json::from_slice::<Json>(body)
            .ok()
            .and_then(|json| json["MessageBody"].as_str().map(str::to_string))
            .or_else(|| form_value(body, "MessageBody")),
        "sesv2.SendEmail" => {
            let json: Json = serde_json::from_slice(body).ok()?;
            let simple = &json["Content"]["Simple"]["Body"];
            simple["Text"]["Data"]
                .as_str()
                .or_else(|| simple["Html"]["Data"].as_str())
                .map(str::to_string)
        }
        _ => None,
    }
}

/// One value of an `application/x-www-form-urlencoded` body.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).and_then(|b| hex(*b)),
                    bytes.get(i + 2).and_then(|b| hex(*b)),
                ) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn snippet(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use hyper::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn auth(service: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=ab")
    }

    #[test]
    fn names_operations_of_each_protocol() {
        let h = headers(&[
            ("authorization", &auth("dynamodb")),
            ("x-amz-target", "DynamoDB_20120810.BatchGetItem"),
        ]);
        assert_eq!(operation("POST", "/", &h, b"{}"), "dynamodb.BatchGetItem");

        let h = headers(&[
            ("authorization", &auth("sns")),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        let body = b"Action=Publish&Version=2010-03-31&PhoneNumber=%2B79001234567&Message=%D0%9A%D0%BE%D0%B4%3A+123456.";
        assert_eq!(operation("POST", "/", &h, body), "sns.Publish");
        assert_eq!(message_text("sns.Publish", body).unwrap(), "Код: 123456.");

        let h = headers(&[
            ("authorization", &auth("ses")),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            operation("POST", "/v2/email/outbound-emails", &h, b"{}"),
            "sesv2.SendEmail"
        );
        let body = br#"{"Content":{"Simple":{"Body":{"Text":{"Data":"code 654321"}}}}}"#;
        assert_eq!(
            message_text("sesv2.SendEmail", body).unwrap(),
            "code 654321"
        );

        let h = headers(&[
            ("authorization", &auth("sqs")),
            ("x-amz-target", "AmazonSQS.SendMessage"),
        ]);
        let body = br#"{"QueueUrl":"http://q","MessageBody":"{\"code\":\"12345678\"}"}"#;
        assert_eq!(operation("POST", "/", &h, body), "sqs.SendMessage");
        assert_eq!(
            message_text("sqs.SendMessage", body).unwrap(),
            r#"{"code":"12345678"}"#
        );

        let h = headers(&[("authorization", &auth("s3"))]);
        assert_eq!(
            operation("GET", "/bucket/key", &h, b""),
            "s3.GET /bucket/key"
        );
        assert_eq!(
            operation("GET", "/", &HeaderMap::new(), b""),
            "unknown.GET /"
        );
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(form_value(b"a=1&b=x%20y+z%", "b").unwrap(), "x y z%");
        assert!(form_value(b"a=1", "b").is_none());
    }
}
