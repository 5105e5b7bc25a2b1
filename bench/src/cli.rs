//! The harness's command lines: flags that take a value, whole numbers, the repository.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The arguments of one command, read flag by flag.
pub struct Flags<I> {
    args: I,
}

impl<I: Iterator<Item = String>> Flags<I> {
    pub fn new(args: I) -> Self {
        Self { args }
    }

    /// The next flag, if any.
    pub fn next_flag(&mut self) -> Option<String> {
        self.args.next()
    }

    /// The value after flag `name`.
    pub fn value(&mut self, name: &str) -> Result<String> {
        self.args
            .next()
            .with_context(|| format!("{name} needs a value (see --help)"))
    }

    pub fn path(&mut self, name: &str) -> Result<PathBuf> {
        self.value(name).map(PathBuf::from)
    }

    /// The whole number after flag `name`, in the type the setting has.
    pub fn number<T: TryFrom<u64>>(&mut self, name: &str) -> Result<T> {
        let n: u64 = self
            .value(name)?
            .parse()
            .with_context(|| format!("{name} takes a whole number"))?;
        T::try_from(n).map_err(|_| anyhow::anyhow!("{name} is too large"))
    }
}

/// The repository root: `given` (`--repo`), else the checkout this crate sits in;
/// canonical, so that reports and child processes agree on it.
pub fn repository(given: Option<PathBuf>) -> Result<PathBuf> {
    let repo = match given {
        Some(r) => r,
        None => uslugi_local::find_repo_root(env!("CARGO_MANIFEST_DIR"))
            .context("the bench crate is not inside the repository; pass --repo")?,
    };
    repo.canonicalize()
        .with_context(|| format!("repository {}", repo.display()))
}
