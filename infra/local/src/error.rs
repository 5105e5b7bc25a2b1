use std::path::PathBuf;

/// Everything that can stop the local stack from starting or from serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },

    #[error("template: {0}")]
    Template(String),

    /// An intrinsic function or reference could not be resolved; `at` names the
    /// resource and property (e.g. `Resources.CodesFunction.Properties.Environment`).
    #[error("{at}: {message}")]
    Resolve { at: String, message: String },

    #[error("the template's rule {rule} refuses these parameters: {message}")]
    RuleFailed { rule: String, message: String },

    #[error("invalid option: {0}")]
    Options(String),

    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{what} exited before it was ready ({status}); see {log}")]
    ChildExited {
        what: String,
        status: String,
        log: String,
    },

    #[error("{what} did not become ready within {seconds} s; see {log}")]
    NotReady {
        what: String,
        seconds: u64,
        log: String,
    },

    #[error("building {binary} failed ({status}); see {log}")]
    Build {
        binary: String,
        status: String,
        log: String,
    },

    #[error("provisioning {resource} in moto failed: {message}")]
    Provision { resource: String, message: String },

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    #[error("http request to {url} failed: {message}")]
    Http { url: String, message: String },

    #[error("unknown function {0}")]
    UnknownFunction(String),

    #[error("the local stack stopped unexpectedly")]
    Stopped,
}

impl Error {
    pub(crate) fn resolve(at: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Resolve {
            at: at.into(),
            message: message.into(),
        }
    }

    pub(crate) fn template(message: impl Into<String>) -> Self {
        Error::Template(message.into())
    }

    pub(crate) fn http(url: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Http {
            url: url.into(),
            message: err.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
