//! `pidfile status --cluster` and `pidfile list --cluster --json`, as an operator runs them during a scenario.

use std::process::Output;

use super::contender::{Contender, SERVICE};
use super::fence::Tenure;

/// What one run of a view printed.
pub struct View {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl View {
    fn of(output: Output) -> View {
        View {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Whether it names this holder: its supervisor's pid and its token, and for `host`, this machine.
    pub fn names(&self, holder: &Tenure) -> bool {
        let text = &self.stdout;
        text.contains(&holder.supervisor.to_string())
            && text.contains(&holder.token.to_string())
            && text.contains(&host())
    }

    /// Whether it mentions the holder's supervisor pid or token at all (a stale answer, when the holder is gone).
    pub fn mentions(&self, holder: &Tenure) -> bool {
        let text = format!("{}{}", self.stdout, self.stderr);
        text.contains(&format!("pid {}", holder.supervisor))
            || text.contains(&format!("\"pid\":{}", holder.supervisor))
            || text.contains(&format!("token {}", holder.token))
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "success: {}, stdout: {:?}, stderr: {:?}", self.success, self.stdout.trim(), self.stderr.trim())
    }
}

/// `pidfile status --cluster URL SERVICE`, from the contender's host.
pub fn status(from: &Contender) -> View {
    View::of(from.pidfile(&["status", "--cluster", from.url(), SERVICE]).output().expect("run pidfile status"))
}

/// `pidfile list --cluster URL --json`, from the contender's host.
pub fn list_json(from: &Contender) -> View {
    View::of(from.pidfile(&["list", "--cluster", from.url(), "--json"]).output().expect("run pidfile list"))
}

/// This machine's name, as the holder records it (uname's nodename, which the kernel also shows here).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("the host name").trim().to_owned()
}
