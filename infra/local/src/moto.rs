//! moto_server as a child process: how it is started and when it answers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ports::free_port;
use crate::process::{wait_until, ChildProcess, Children, Output};

/// How long moto may take to answer after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// moto's server with DynamoDB requests serialised (see the script for why).
const LAUNCHER: &str = include_str!("moto_server.py");

/// moto's server listening on 127.0.0.1:`port`, run by the Python next to
/// `moto_server` in the same virtual environment.
pub fn command(moto_server: &Path, port: u16) -> Command {
    let python = moto_server
        .parent()
        .map(|bin| bin.join("python"))
        .unwrap_or_else(|| "python3".into());
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(LAUNCHER)
        .arg("-H")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string());
    // moto runs on boto3, which fails every request when, say, AWS_PROFILE
    // names a profile that does not exist here; the developer's AWS settings
    // have no business in moto anyway.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            command.env_remove(&key);
        }
    }
    command
}

/// Whether moto at `url` (`http://127.0.0.1:<port>`) answers requests yet.
pub async fn answers(http: &reqwest::Client, url: &str) -> bool {
    http.get(format!("{url}/moto-api/data.json"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// A moto_server of its own on a free loopback port, for tools that need moto
/// without the rest of the stack. Stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    children: Children,
}

impl Moto {
    /// Starts `moto_server` with its output in `log` and returns once it answers.
    /// Like every child, moto also stops when the thread that started it exits
    /// (see [`ChildProcess::spawn`]).
    pub async fn start(moto_server: &Path, log: &Path) -> Result<Moto> {
        // A port is free when picked but may be taken before moto binds it;
        // moto then exits at once, and another port is tried.
        let mut attempts = 3;
        loop {
            attempts -= 1;
            match Moto::start_on(moto_server, free_port()?, log).await {
                Err(Error::ChildExited { .. }) if attempts > 0 => continue,
                result => return result,
            }
        }
    }

    async fn start_on(moto_server: &Path, port: u16, log: &Path) -> Result<Moto> {
        let mut children = Children::default();
        children.push(ChildProcess::spawn(
            "moto_server",
            command(moto_server, port),
            Output::File(log.to_path_buf()),
        )?);
        let mut moto = Moto { port, children };
        let http = reqwest::Client::new();
        let url = moto.url();
        wait_until(
            "moto_server",
            READY_TIMEOUT,
            &mut moto.children,
            &log.display().to_string(),
            || answers(&http, &url),
        )
        .await?;
        Ok(moto)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops moto (SIGTERM, then SIGKILL); dropping it does the same.
    pub fn stop(self) {
        drop(self);
    }
}
