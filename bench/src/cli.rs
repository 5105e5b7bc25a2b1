//! The harness's command lines: flags that take a value, whole numbers, the repository.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

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

    /// Reads the whole number after flag `name` into `setting`; `true`, the flag is known
    /// (what a command's own flags answer [`parse`]).
    pub fn set<T: TryFrom<u64>>(&mut self, setting: &mut T, name: &str) -> Result<bool> {
        *setting = self.number(name)?;
        Ok(true)
    }
}

/// The flags every command takes: the repository and the report to write.
pub struct Common {
    pub repo: PathBuf,
    pub out: PathBuf,
}

/// Reads a command's flags: `-h`/`--help` (then `None`), `--repo` and `--out` (by default
/// `report` in the repository), and every other one by `own`, which answers whether it
/// knows the flag; an unknown flag is an error.
pub fn parse<I: Iterator<Item = String>>(
    args: I,
    report: &str,
    mut own: impl FnMut(&str, &mut Flags<I>) -> Result<bool>,
) -> Result<Option<Common>> {
    let mut repo = None;
    let mut out = None;
    let mut flags = Flags::new(args);
    while let Some(arg) = flags.next_flag() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--repo" => repo = Some(flags.path("--repo")?),
            "--out" => out = Some(flags.path("--out")?),
            other => {
                if !own(other, &mut flags)? {
                    bail!("unknown argument {other:?} (see --help)");
                }
            }
        }
    }
    let repo = repository(repo)?;
    Ok(Some(Common {
        out: out.unwrap_or_else(|| repo.join(report)),
        repo,
    }))
}

/// The flags of the commands that start a local stack of their own: the common ones and
/// `--lambda-concurrency`, the instances of each function the stack runs.
pub struct StackCommon {
    pub repo: PathBuf,
    pub out: PathBuf,
    pub lambda_concurrency: u32,
}

/// Reads the flags of a command that starts a local stack, as [`parse`] does, with
/// `--lambda-concurrency` (`lambda_concurrency` unless given; at least 1) among the common
/// ones.
pub fn parse_stack<I: Iterator<Item = String>>(
    args: I,
    report: &str,
    lambda_concurrency: u32,
    mut own: impl FnMut(&str, &mut Flags<I>) -> Result<bool>,
) -> Result<Option<StackCommon>> {
    let mut instances = lambda_concurrency;
    let common = parse(args, report, |flag, flags| match flag {
        "--lambda-concurrency" => flags.set(&mut instances, flag),
        _ => own(flag, flags),
    })?;
    let Some(Common { repo, out }) = common else {
        return Ok(None);
    };
    if instances == 0 {
        bail!("--lambda-concurrency must be at least 1");
    }
    Ok(Some(StackCommon {
        repo,
        out,
        lambda_concurrency: instances,
    }))
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
