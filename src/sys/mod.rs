//! The Linux specifics: file identity, process liveness and start times, who holds a file ([`holders`]), and the
//! three C library registrations (`atexit`, `pthread_atfork`, reading a signal's disposition) that no system-call
//! crate wraps. All `unsafe` code of the crate except the signal handler's registration lives here.

// The gate: the three C library registrations below have no safe wrapper in the system-call crates.
#![allow(unsafe_code)]

pub(crate) mod holders;

use std::ffi::CStr;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rustix::fs::{AtFlags, CWD, FileType, Stat};
use rustix::io::Errno;
use rustix::process::Pid;

/// The largest pid Linux can hand out (`PID_MAX_LIMIT` on 64-bit systems): a larger number is not a pid.
pub(crate) const MAX_PID: u32 = 4_194_304;

/// What makes a file itself rather than whatever its path names now: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub(crate) fn of(stat: &Stat) -> FileId {
        FileId { dev: stat.st_dev, ino: stat.st_ino }
    }
}

/// Describes what stands at a path when it is not a plain pidfile (a regular file with one name), for errors.
pub(crate) fn not_a_pidfile(stat: &Stat) -> Option<String> {
    let kind = FileType::from_raw_mode(stat.st_mode);
    let found = match kind {
        FileType::RegularFile if stat.st_nlink > 1 => {
            return Some(format!("a file with {} hard links", stat.st_nlink));
        }
        FileType::RegularFile => return None,
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    };
    Some(found.to_owned())
}

/// The path as a C string, for the calls that must not allocate later (the signal handler's).
pub(crate) fn c_path(path: &std::path::Path) -> Result<std::ffi::CString, crate::Error> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| crate::Error::InvalidName {
        what: "path",
        name: path.display().to_string(),
        reason: "it contains a NUL byte",
    })
}

/// Whether the path still names the file `id`, without following a symbolic link.
pub(crate) fn path_names(path: &CStr, id: FileId) -> bool {
    matches!(rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW), Ok(stat) if FileId::of(&stat) == id)
}

/// The parent of process `pid`, from `/proc/PID/stat`.
pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    // fields[0] is field 3 (state), fields[1] field 4 (ppid).
    proc_stat_fields(pid)?.get(1)?.parse().ok()
}

/// The fields of `/proc/PID/stat` from field 3 (the state) on. The command name (field 2) is in parentheses and
/// may hold anything, spaces and parentheses included, so the fields are counted after the last `)`.
fn proc_stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process lives, and when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// No such process, only a zombie waiting to be reaped, or a kernel thread, which no pidfile names: a file
    /// naming one was written in another pid namespace (a service started second in a container writes 2, which is
    /// the kernel's kthreadd on the host).
    Dead,
    /// The process exists (a permission error on signalling it counts as existing); `started` is its start time in
    /// nanoseconds since boot, when `/proc` tells it.
    Alive { started: Option<u64> },
}

/// Probes `pid` with the null signal and reads its start time from `/proc/PID/stat`.
pub(crate) fn liveness(pid: u32) -> Liveness {
    if pid > MAX_PID {
        return Liveness::Dead;
    }
    let Some(raw) = Pid::from_raw(pid as i32) else {
        return Liveness::Dead;
    };
    // Any answer but "no such process" means it exists: EPERM is a live process of another user.
    if let Err(Errno::SRCH) = rustix::process::test_kill_process(raw) {
        return Liveness::Dead;
    }
    let Some(fields) = proc_stat_fields(pid) else {
        return Liveness::Alive { started: None };
    };
    // fields[0] is field 3 (state); field 22 (starttime, in clock ticks since boot) is fields[19].
    if matches!(fields.first().map(String::as_str), Some("Z" | "X" | "x")) || is_kernel_thread(&fields) {
        return Liveness::Dead;
    }
    let started = fields
        .get(19)
        .and_then(|ticks| ticks.parse::<u64>().ok())
        .map(|ticks| ticks.saturating_mul(1_000_000_000) / rustix::param::clock_ticks_per_second().max(1));
    Liveness::Alive { started }
}

/// Whether the fields of a `/proc/PID/stat` (from field 3 on) are a kernel thread's: PF_KTHREAD in field 9, the
/// flags.
fn is_kernel_thread(fields: &[String]) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    fields.get(6).and_then(|flags| flags.parse::<u64>().ok()).is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// The time a file was last written, in nanoseconds since boot (the clock of process start times), or `None` if it
/// was written before boot (a file from an earlier boot).
pub(crate) fn modified_since_boot(stat: &Stat) -> Option<u64> {
    use rustix::time::{ClockId, clock_gettime};
    let nanos = |secs: i64, nsecs: i64| secs as i128 * 1_000_000_000 + nsecs as i128;
    let real = clock_gettime(ClockId::Realtime);
    let boot = clock_gettime(ClockId::Boottime);
    let boot_at = nanos(real.tv_sec, real.tv_nsec) - nanos(boot.tv_sec, boot.tv_nsec);
    let modified = nanos(stat.st_mtime, stat.st_mtime_nsec as i64) - boot_at;
    u64::try_from(modified).ok()
}

/// Counts the forks this process has gone through, so that a guard can tell, without a system call, whether it
/// is still in the process that created it.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// This process's pid, valid while `PID_GENERATION` equals `FORK_GENERATION`.
static CACHED_PID: AtomicU32 = AtomicU32::new(0);
static PID_GENERATION: AtomicU64 = AtomicU64::new(u64::MAX);
static WATCH_FORKS: Once = Once::new();

extern "C" fn count_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The number of forks between the start of the process and now, as seen by this process.
fn fork_generation() -> u64 {
    WATCH_FORKS.call_once(|| {
        // SAFETY: registers a handler that only increments an atomic, which is safe in a freshly forked child.
        // pthread_atfork can only fail for lack of memory, and then the cached pid is simply never trusted across
        // a fork that was not seen: `current_pid` below falls back to asking the kernel.
        let registered = unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
        if registered != 0 {
            FORK_GENERATION.store(u64::MAX - 1, Ordering::SeqCst);
        }
    });
    FORK_GENERATION.load(Ordering::SeqCst)
}

/// This process's pid, asking the kernel only once per fork.
pub(crate) fn current_pid() -> u32 {
    let generation = fork_generation();
    if generation != u64::MAX - 1 && PID_GENERATION.load(Ordering::SeqCst) == generation {
        return CACHED_PID.load(Ordering::SeqCst);
    }
    let pid = rustix::process::getpid().as_raw_pid() as u32;
    CACHED_PID.store(pid, Ordering::SeqCst);
    PID_GENERATION.store(generation, Ordering::SeqCst);
    pid
}

/// Runs `hook` when the process exits normally (`exit`, or returning from `main`).
pub(crate) fn at_exit(hook: extern "C" fn()) -> bool {
    // SAFETY: `hook` is a plain function with no arguments, as atexit requires.
    unsafe { libc::atexit(hook) == 0 }
}

/// Whether `signal` is set to be ignored (as a shell does for SIGINT in background jobs): such a process must go on
/// ignoring it.
pub(crate) fn signal_is_ignored(signal: i32) -> bool {
    // SAFETY: reads the current disposition into a zeroed struct; a null new action changes nothing.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_with_a_start_time_before_now() {
        let Liveness::Alive { started: Some(started) } = liveness(std::process::id()) else {
            panic!("this process is not seen as alive with a start time");
        };
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        assert!(started <= now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64);
    }

    #[test]
    fn parent_of_this_process_is_known() {
        assert_eq!(parent_of(std::process::id()), Some(rustix::process::getppid().unwrap().as_raw_pid() as u32));
    }

    #[test]
    fn a_kernel_thread_is_told_by_its_flags() {
        let fields = |stat: &str| -> Vec<String> { stat.split(' ').map(str::to_owned).collect() };
        // kthreadd and a shell, as /proc/PID/stat gives them from field 3 on.
        assert!(is_kernel_thread(&fields("S 0 0 0 0 -1 2129984 0 0 0 0")));
        assert!(!is_kernel_thread(&fields("S 1234 1240 1240 34816 1240 4194560 0 0 0 0")));
        assert!(!is_kernel_thread(&fields("S 1")));
        // This process is no kernel thread.
        assert!(!is_kernel_thread(&proc_stat_fields(std::process::id()).unwrap()));
    }

    #[test]
    fn impossible_pids_are_dead() {
        assert_eq!(liveness(0), Liveness::Dead);
        assert_eq!(liveness(MAX_PID + 1), Liveness::Dead);
        assert_eq!(liveness(u32::MAX), Liveness::Dead);
    }

    #[test]
    fn cached_pid_is_the_real_pid() {
        assert_eq!(current_pid(), std::process::id());
        assert_eq!(current_pid(), std::process::id());
    }
}
