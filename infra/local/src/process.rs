//! Child processes of the local stack and their clean shutdown.
//!
//! Every child starts in its own process group, so a terminal's Ctrl-C reaches
//! only this process, which then stops the children in order. `cargo lambda
//! watch` in turn starts each function instance in a process group of its own;
//! those groups are found through /proc and stopped too. On Linux each child
//! also gets a parent-death signal, so it goes away even if this process is
//! killed outright.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Where a child's output goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// Appended to this file (created or truncated at start).
    File(PathBuf),
    /// Shared with this process's stdout/stderr.
    Inherit,
}

impl Output {
    pub fn describe(&self) -> String {
        match self {
            Output::File(p) => p.display().to_string(),
            Output::Inherit => "the output above".to_string(),
        }
    }
}

#[derive(Debug)]
pub struct ChildProcess {
    pub name: String,
    child: Child,
    pub output: Output,
    /// Set once the child has been reaped; its pid may then belong to
    /// another process and must not be signalled.
    exited: Option<std::process::ExitStatus>,
}

impl ChildProcess {
    /// Starts `command` in a new process group, tied to this process's lifetime.
    ///
    /// The parent-death signal fires when the *thread* that forked the child
    /// exits, so children must be spawned from a thread that lives as long as
    /// the stack (the stack's own thread does).
    pub fn spawn(name: &str, mut command: Command, output: Output) -> Result<ChildProcess> {
        match &output {
            Output::File(path) => {
                let file = File::create(path).map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
                let err = file.try_clone()?;
                command.stdout(Stdio::from(file)).stderr(Stdio::from(err));
            }
            Output::Inherit => {
                command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
        }
        command.stdin(Stdio::null()).process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = nix::unistd::getpid();
            // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                    // The parent may have died before the signal was armed.
                    if nix::unistd::getppid() != parent {
                        return Err(std::io::Error::other("parent exited"));
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().map_err(|source| Error::Spawn {
            what: name.to_string(),
            source,
        })?;
        Ok(ChildProcess {
            name: name.to_string(),
            child,
            output,
            exited: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the child has exited (reaping it).
    fn poll_exit(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// `Err` with the exit status once the child has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.poll_exit()? {
            None => Ok(()),
            Some(status) => Err(Error::ChildExited {
                what: self.name.clone(),
                status: status.to_string(),
                log: self.output.describe(),
            }),
        }
    }

    /// Waits (polling, without blocking the runtime) until the child exits.
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus> {
        loop {
            if let Some(status) = self.poll_exit()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The children of one stack; stopped when dropped.
#[derive(Debug, Default)]
pub struct Children {
    list: Vec<ChildProcess>,
}

impl Children {
    pub fn push(&mut self, child: ChildProcess) -> usize {
        self.list.push(child);
        self.list.len() - 1
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut ChildProcess> {
        self.list.get_mut(index)
    }

    /// First child that has exited, as an error.
    pub fn check_running(&mut self) -> Result<()> {
        for c in &mut self.list {
            c.check_running()?;
        }
        Ok(())
    }

    /// Stops every child and everything they started: SIGTERM to every process
    /// group involved, then SIGKILL to whatever is left after `grace`.
    pub fn stop_all(&mut self, grace: Duration) {
        if self.list.is_empty() {
            return;
        }
        let own_group = nix::unistd::getpgrp().as_raw();
        let mut roots: Vec<i32> = Vec::new();
        for c in &mut self.list {
            if matches!(c.poll_exit(), Ok(None)) {
                roots.push(c.pid() as i32);
            }
        }
        // Collected before anything is signalled: once a child exits, its
        // descendants are re-parented and can no longer be traced to it.
        let mut groups: BTreeSet<i32> = roots.iter().copied().collect();
        groups.extend(descendant_groups(&roots));
        groups.remove(&own_group);
        groups.retain(|g| *g > 1);

        for g in &groups {
            let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut alive = false;
            for c in &mut self.list {
                if matches!(c.poll_exit(), Ok(None)) {
                    alive = true;
                }
            }
            // Signal 0 only probes whether the group still has members.
            alive |= groups
                .iter()
                .any(|g| killpg(Pid::from_raw(*g), None).is_ok() && group_has_live_member(*g));
            if !alive || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for g in &groups {
            let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
        }
        for c in &mut self.list {
            if c.exited.is_none() {
                let _ = c.child.wait();
            }
        }
        self.list.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(5));
    }
}

/// Polls `ready` until it holds; fails when one of `children` exits first or
/// `timeout` passes (`log` is where to look then).
pub async fn wait_until<F, Fut>(
    what: &str,
    timeout: Duration,
    children: &mut Children,
    log: &str,
    mut ready: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        children.check_running()?;
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                what: what.to_string(),
                seconds: timeout.as_secs(),
                log: log.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Debug, Clone, Copy)]
struct ProcInfo {
    ppid: i32,
    pgid: i32,
    zombie: bool,
}

/// pid → parent, group and state for every process, from /proc.
fn process_table() -> BTreeMap<i32, ProcInfo> {
    let mut table = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in parentheses and may contain spaces; fields
        // after the last ')' are: state ppid pgrp ...
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() < 3 {
            continue;
        }
        let (Ok(ppid), Ok(pgid)) = (fields[1].parse(), fields[2].parse()) else {
            continue;
        };
        table.insert(
            pid,
            ProcInfo {
                ppid,
                pgid,
                zombie: fields[0] == "Z",
            },
        );
    }
    table
}

/// Process groups of every descendant of `roots`.
fn descendant_groups(roots: &[i32]) -> BTreeSet<i32> {
    let table = process_table();
    let mut groups = BTreeSet::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    let mut seen: BTreeSet<i32> = roots.iter().copied().collect();
    while let Some(parent) = frontier.pop() {
        for (pid, info) in &table {
            if info.ppid == parent && seen.insert(*pid) {
                groups.insert(info.pgid);
                frontier.push(*pid);
            }
        }
    }
    groups
}

/// Whether any non-zombie process is in group `pgid`; zombies wait for a
/// reaper that is not us and must not hold up the shutdown.
fn group_has_live_member(pgid: i32) -> bool {
    process_table()
        .values()
        .any(|p| p.pgid == pgid && !p.zombie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_all_kills_the_whole_tree() {
        let dir = std::env::temp_dir().join(format!("uslugi-local-proc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A shell that starts a grandchild in a process group of its own, as
        // cargo lambda watch does with function instances, then waits.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg("setsid sleep 300 & echo $! > grandchild.pid; wait")
            .current_dir(&dir);
        let mut children = Children::default();
        children.push(ChildProcess::spawn("sh", cmd, Output::File(dir.join("sh.log"))).unwrap());
        let pid_file = dir.join("grandchild.pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        let grandchild = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "grandchild did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        // Give setsid a moment to move the grandchild into its own group.
        std::thread::sleep(Duration::from_millis(200));
        children.check_running().unwrap();
        children.stop_all(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let table = process_table();
            let alive = table.get(&grandchild).is_some_and(|p| !p.zombie);
            if !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {grandchild} survived"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
