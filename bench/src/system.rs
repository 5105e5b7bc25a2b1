//! The machine and its processes: /proc readings, child processes that cannot outlive
//! the harness, versions of the tools involved.

use std::io::{self, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

/// Memory of a live process, from /proc/<pid>/status, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Peak resident set size ("high water mark") since the process started.
    pub hwm_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Ok(Memory {
        rss_kib: field("VmRSS:").context("no VmRSS in /proc status")?,
        hwm_kib: field("VmHWM:").context("no VmHWM in /proc status")?,
    })
}

/// A child process that is killed when dropped, and by the kernel if the harness dies
/// without getting the chance.
pub struct Guarded {
    child: Child,
}

impl Guarded {
    pub fn spawn(name: &str, mut command: Command) -> Result<Self> {
        command.kill_on_drop(true).stdin(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { child })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the process to exit on its own.
    pub async fn exited(&mut self) -> io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Kills the process and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

impl Drop for Guarded {
    /// On the way out of a failed or interrupted run: kill, and reap briefly so no
    /// zombie outlives the harness.
    fn drop(&mut self) {
        if self.child.id().is_none() {
            return;
        }
        let _ = self.child.start_kill();
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        // Not a security boundary: request ids only need to differ per run.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    buf
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub date: String,
    pub cpu_model: String,
    pub nproc: usize,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    pub cargo_lambda: String,
    pub moto: String,
}

pub async fn machine_info(repo: &Path) -> MachineInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let venv_cargo_lambda = repo.join(".venv/bin/cargo-lambda");
    let cargo_lambda = if venv_cargo_lambda.exists() {
        // Run directly, the binary wants the subcommand cargo would pass it.
        first_line(
            venv_cargo_lambda.to_str().unwrap_or("cargo-lambda"),
            &["lambda", "--version"],
        )
        .await
    } else {
        first_line("cargo", &["lambda", "--version"]).await
    };
    MachineInfo {
        date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).await,
        cpu_model,
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory,
        kernel,
        rustc: first_line("rustc", &["--version"]).await,
        cargo_lambda,
        moto: moto_version(repo),
    }
}

async fn first_line(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await;
    match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("unknown")
            .trim()
            .to_string(),
        _ => "unknown".into(),
    }
}

/// moto's version from its installed distribution metadata in the project venv.
fn moto_version(repo: &Path) -> String {
    let lib = repo.join(".venv/lib");
    let Ok(pythons) = std::fs::read_dir(&lib) else {
        return "unknown".into();
    };
    for python in pythons.flatten() {
        let Ok(packages) = std::fs::read_dir(python.path().join("site-packages")) else {
            continue;
        };
        for entry in packages.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(version) = name
                .strip_prefix("moto-")
                .and_then(|v| v.strip_suffix(".dist-info"))
            {
                return version.to_string();
            }
        }
    }
    "unknown".into()
}

/// Resolves when the harness is asked to stop (Ctrl-C, SIGTERM, SIGHUP).
pub async fn termination_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

/// A random version-4 UUID in its usual text form.
pub fn uuid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Writes `contents` to `path` whole: first beside it (the extension `temp`), then
/// renamed over it, so that a reader never sees half of it.
pub fn write_whole(path: &Path, temp: &str, contents: &str) -> Result<()> {
    let temp = path.with_extension(temp);
    std::fs::write(&temp, contents).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))
}
