//! A forger: a process of the unprivileged user `nobody` that opens a file and locks it as it chooses, to show
//! what another user's lock does and does not prove. It runs python3 under `setpriv`, so it needs root.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The attacker's user id: `nobody`.
pub const NOBODY: u32 = 65534;

/// The lock a forger takes on the file it opened.
#[derive(Debug, Clone, Copy)]
pub enum Lock {
    /// `flock(LOCK_EX)`.
    FlockExclusive,
    /// `flock(LOCK_SH)`.
    FlockShared,
    /// A POSIX record read lock (`fcntl(F_SETLK)` with `F_RDLCK`, as `lockf(LOCK_SH)` takes it).
    PosixRead,
    /// An open file description read lock (`fcntl(F_OFD_SETLK)` with `F_RDLCK`).
    OfdRead,
}

impl Lock {
    fn name(self) -> &'static str {
        match self {
            Lock::FlockExclusive => "flock-ex",
            Lock::FlockShared => "flock-sh",
            Lock::PosixRead => "posix-read",
            Lock::OfdRead => "ofd-read",
        }
    }
}

/// Opens argv[1] with Python's open mode argv[2], writes argv[3] into it (with `{pid}` replaced by its own pid),
/// takes the lock argv[4] without waiting, says `ready PID`, and keeps the file and its lock until its standard
/// input closes.
const SCRIPT: &str = r#"
import fcntl, os, struct, sys
path, mode, content, lock = sys.argv[1:]
f = open(path, mode)
if content:
    f.write(content.replace("{pid}", str(os.getpid())))
    f.flush()
if lock == "flock-ex":
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
elif lock == "flock-sh":
    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
elif lock == "posix-read":
    fcntl.lockf(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
elif lock == "ofd-read":
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for an OFD lock), as laid out on 64-bit Linux.
    fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack("=hh4xqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0))
else:
    sys.exit("unknown lock " + lock)
print("ready", os.getpid(), flush=True)
sys.stdin.read()
"#;

/// A python3 process of `nobody` holding a lock on a file, killed when dropped.
pub struct Forger {
    child: Child,
}

impl Forger {
    /// Runs python3 as `nobody`: it opens `path` with the Python open `mode` (`"r"` read-only, `"w"` created or
    /// truncated for writing, `"r+"` read-write), writes `content` (when not empty; `{pid}` in it stands for the
    /// forger's own pid), takes `lock`, and holds it until dropped. Returns once the lock is held; panics if it could
    /// not be taken.
    pub fn start(path: &Path, mode: &str, content: &str, lock: Lock) -> Forger {
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "python3", "-c", SCRIPT])
            .arg(path)
            .args([mode, content, lock.name()])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run setpriv (util-linux)");
        let mut forger = Forger { child };
        let mut line = String::new();
        BufReader::new(forger.child.stdout.as_mut().unwrap()).read_line(&mut line).expect("read the forger's output");
        assert_eq!(
            line.trim_end(),
            format!("ready {}", forger.pid()),
            "the forger could not lock {} (its errors are above)",
            path.display()
        );
        forger
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs (it was not signalled).
    pub fn lives(&mut self) -> bool {
        self.child.try_wait().expect("wait for the forger").is_none()
    }
}

impl Drop for Forger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
