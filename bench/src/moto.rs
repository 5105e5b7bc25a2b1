//! A private moto server for the run, with the resources the template declares.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::process::Command;

use crate::aws::Setup;
use crate::system::{self, Guarded};
use crate::template::{Infra, ACCOUNT};

pub struct Moto {
    pub addr: SocketAddr,
    process: Guarded,
}

impl Moto {
    /// Starts `moto_server` on a free port and waits until it answers.
    pub async fn start(moto_server: &Path, log: &Path) -> Result<Self> {
        if !moto_server.is_file() {
            bail!(
                "moto_server not found at {}: install the dev tools into .venv (`make venv`) or pass --moto PATH",
                moto_server.display()
            );
        }
        let mut last_error = None;
        // The port is free when picked but could be taken before moto binds it; retry.
        for _ in 0..3 {
            match Self::try_start(moto_server, log).await {
                Ok(moto) => return Ok(moto),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto did not start")))
    }

    async fn try_start(moto_server: &Path, log: &Path) -> Result<Self> {
        let port = system::free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(moto_server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out));
        let mut process = Guarded::spawn("moto_server", command)?;
        let setup = Setup::new(crate::http::client(), &format!("http://{addr}"));
        let started = Instant::now();
        loop {
            if let Some(status) = process.try_exited() {
                bail!(
                    "moto_server exited ({status}) while starting; last lines of {}:\n{}",
                    log.display(),
                    system::tail(log, 15)
                );
            }
            if setup
                .json("dynamodb", "DynamoDB_20120810.ListTables", &json!({}))
                .await
                .is_ok()
            {
                return Ok(Self { addr, process });
            }
            if started.elapsed() > Duration::from_secs(60) {
                process.stop().await;
                bail!(
                    "moto_server did not answer within 60 s; last lines of {}:\n{}",
                    log.display(),
                    system::tail(log, 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the tables, e-mail identities, queues and topics.
    pub async fn provision(&self, infra: &Infra) -> Result<()> {
        let setup = Setup::new(crate::http::client(), &format!("http://{}", self.addr));
        for table in &infra.tables {
            setup
                .json("dynamodb", "DynamoDB_20120810.CreateTable", table)
                .await
                .with_context(|| format!("creating table {}", table["TableName"]))?;
        }
        for identity in &infra.email_identities {
            setup
                .rest_json(
                    "ses",
                    "/v2/email/identities",
                    &json!({ "EmailIdentity": identity }),
                )
                .await
                .with_context(|| format!("creating the SES identity {identity}"))?;
        }
        for (name, fifo) in &infra.queues {
            let mut request = json!({ "QueueName": name });
            if *fifo {
                request["Attributes"] = json!({ "FifoQueue": "true" });
            }
            setup
                .json("sqs", "AmazonSQS.CreateQueue", &request)
                .await
                .with_context(|| format!("creating queue {name}"))?;
        }
        for name in &infra.topics {
            setup
                .query(
                    "sns",
                    &[
                        ("Action", "CreateTopic"),
                        ("Name", name),
                        ("Version", "2010-03-31"),
                    ],
                )
                .await
                .with_context(|| format!("creating topic {name} in account {ACCOUNT}"))?;
        }
        Ok(())
    }

    pub async fn stop(self) {
        self.process.stop().await;
    }
}
