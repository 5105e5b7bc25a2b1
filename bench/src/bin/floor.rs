//! The floor of a cold start: a Lambda custom runtime that only asks the Runtime API for
//! its events and answers each with `{}`. No AWS SDK, no configuration, no async runtime,
//! nothing but the standard library: the harness starts and times it exactly as it does
//! the functions, so that the report shows how far above the bare process start and two
//! loopback HTTP exchanges each function's cold start is.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

const PREFIX: &str = "/2018-06-01/runtime";

fn main() -> ExitCode {
    let Some(api) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("uslugi-bench-floor: AWS_LAMBDA_RUNTIME_API is not set");
        return ExitCode::FAILURE;
    };
    let api = api.to_string_lossy().into_owned();
    loop {
        match serve_one(&api) {
            Ok(true) => {}
            // The Runtime API has no more events for this process.
            Ok(false) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("uslugi-bench-floor: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Asks for the next event and answers it; `false` when the Runtime API gave none.
fn serve_one(api: &str) -> io::Result<bool> {
    let next = exchange(api, "GET", &format!("{PREFIX}/invocation/next"), "")?;
    if next.status != 200 {
        return Ok(false);
    }
    let id = next
        .header("lambda-runtime-aws-request-id")
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "an event without lambda-runtime-aws-request-id",
            )
        })?;
    let answer = exchange(
        api,
        "POST",
        &format!("{PREFIX}/invocation/{id}/response"),
        "{}",
    )?;
    if answer.status != 202 {
        return Err(io::Error::other(format!(
            "the Runtime API refused the response with {}",
            answer.status
        )));
    }
    Ok(true)
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection; the body of the answer is read and
/// dropped (the floor does nothing with its event).
fn exchange(api: &str, method: &str, path: &str, body: &str) -> io::Result<Answer> {
    let mut stream = TcpStream::connect(api)?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {api}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP answer"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let answer = Answer { status, headers };
    match answer
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(length) => io::copy(&mut reader.take(length as u64), &mut io::sink())?,
        None => io::copy(&mut reader, &mut io::sink())?,
    };
    Ok(answer)
}
