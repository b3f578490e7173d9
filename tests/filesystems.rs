//! A pidfile on every filesystem a pid directory lives on under Linux: the machine's disk, tmpfs, overlayfs (the
//! merged directory of a container's root), btrfs (its top-level volume and a subvolume, each with a device number
//! of its own, which the kernel's lock table does not show) and xfs.
//!
//! On each, as the library and the `pidfile` command both say: a held pidfile is proven running, refused to a
//! second claim and to a removal; killed with SIGKILL, its holder leaves a stale file that the next claim takes over
//! in place; and a lock passed on to a daemon's child, whose parent died without a word, is never taken for stale.
//!
//! Each test but the disk's mounts its own filesystem (btrfs and xfs from an image file, through a loop device) in a
//! temporary directory under `/var/tmp`, and unmounts it when it ends, however it ends. They need root, and the
//! tools of the Debian packages `mount` (mount, umount, losetup), `btrfs-progs` and `xfsprogs`: a missing tool fails
//! the test, naming its package, and so does a kernel that cannot mount the filesystem.

mod common;

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use pidfiles::{Doubt, Error, PidFile, Status};
use rustix::process::{Pid, PidfdFlags, Signal};

use common::{Running, claimer, eventually, process_lives, runs_as_root};

/// `statfs` magic numbers (linux/magic.h), to be sure each test runs on the filesystem it names.
const TMPFS_MAGIC: u64 = 0x0102_1994;
const OVERLAYFS_MAGIC: u64 = 0x794c_7630;
const BTRFS_MAGIC: u64 = 0x9123_683e;
const XFS_MAGIC: u64 = 0x5846_5342;

/// The smallest images the tools accept: mkfs.xfs refuses less than 300 MiB. Both are sparse files.
const BTRFS_IMAGE_BYTES: u64 = 200 << 20;
const XFS_IMAGE_BYTES: u64 = 300 << 20;

// ---------------------------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn disk_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    let place = Place::on_disk();
    eprintln!("the disk under /var/tmp is {}", filesystem_name(place.dir()));
    held_then_stale_then_taken_over(place.dir());
    daemons_lock_is_not_stale(place.dir());
}

#[test]
fn tmpfs_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    if !runs_as_root("to mount a tmpfs") {
        return;
    }
    let place = Place::tmpfs();
    assert_filesystem(place.dir(), TMPFS_MAGIC, "tmpfs");
    held_then_stale_then_taken_over(place.dir());
    daemons_lock_is_not_stale(place.dir());
}

#[test]
fn overlayfs_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    if !runs_as_root("to mount an overlayfs") {
        return;
    }
    let place = Place::overlay(&[]);
    assert_filesystem(place.dir(), OVERLAYFS_MAGIC, "overlayfs");
    held_then_stale_then_taken_over(place.dir());
    daemons_lock_is_not_stale(place.dir());
}

#[test]
fn btrfs_top_level_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    if !runs_as_root("to mount a btrfs image") {
        return;
    }
    let place = Place::btrfs();
    assert_filesystem(place.dir(), BTRFS_MAGIC, "btrfs");
    held_then_stale_then_taken_over(place.dir());
    daemons_lock_is_not_stale(place.dir());
}

#[test]
fn btrfs_subvolume_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    if !runs_as_root("to mount a btrfs image") {
        return;
    }
    let place = Place::btrfs();
    let subvolume = place.btrfs_subvolume("sub");
    assert_filesystem(&subvolume, BTRFS_MAGIC, "btrfs");
    assert_ne!(
        std::fs::metadata(&subvolume).unwrap().dev(),
        std::fs::metadata(place.dir()).unwrap().dev(),
        "a btrfs subvolume has a device number of its own"
    );
    held_then_stale_then_taken_over(&subvolume);
    daemons_lock_is_not_stale(&subvolume);
}

#[test]
fn xfs_pidfile_is_proven_kept_stale_after_sigkill_taken_over_and_a_daemons_lock_is_not_stale() {
    if !runs_as_root("to mount an xfs image") {
        return;
    }
    let place = Place::xfs();
    assert_filesystem(place.dir(), XFS_MAGIC, "xfs");
    held_then_stale_then_taken_over(place.dir());
    daemons_lock_is_not_stale(place.dir());
}

/// btrfs numbers inodes per subvolume, and `/proc/locks` shows the filesystem's device, not the subvolume's: the
/// first file of the top-level volume and the first file of a subvolume look the same there. A pidfile in the
/// subvolume, locked by a daemon's orphaned child and naming the pid of the process that holds the top-level file,
/// must not be taken as proven by that process (which a comparison by inode number alone would do), nor let
/// `pidfile stop` signal it.
#[test]
fn btrfs_subvolume_pidfile_is_never_proven_by_the_holder_of_the_same_inode_in_the_top_level() {
    if !runs_as_root("to mount a btrfs image") {
        return;
    }
    let place = Place::btrfs();
    let subvolume = place.btrfs_subvolume("sub");
    let top_path = place.dir().join("t-web.pid");
    let sub_path = subvolume.join("t-web.pid");

    let (mut top_holder, top_pid) = start_holder(&top_path);
    let (mut starter, orphan) = start_daemon(&sub_path);
    let starter_pid = starter.pid();
    let (top, sub) = (std::fs::metadata(&top_path).unwrap(), std::fs::metadata(&sub_path).unwrap());
    assert_eq!(top.ino(), sub.ino(), "the first file of each btrfs subvolume has the same inode number");
    assert_ne!(top.dev(), sub.dev(), "stat tells the two files apart by device");
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    assert_eq!(
        lock_table_file(&locks, top_pid),
        lock_table_file(&locks, starter_pid),
        "the kernel's lock table shows both files with the same device and inode:\n{locks}"
    );

    // The daemon's parent dies as a daemonizing parent does, leaving the file to its child; then the file is made to
    // name the process holding the top-level file.
    starter.stop(9);
    assert!(orphan.lives());
    std::fs::write(&sub_path, format!("{top_pid}\n")).unwrap();

    // The lock is found through the open files of every process: the child holds it, and the file names another.
    let status = pidfiles::status_at(&sub_path).unwrap();
    assert!(
        matches!(status, Status::Unproven { pid: Some(pid), holder: Some(holder), doubt: Doubt::NotNamed }
            if pid == top_pid && holder.pid == orphan.pid),
        "{status:?}"
    );
    assert_eq!(
        pidfiles::status_at(&top_path).unwrap(),
        Status::Running { pid: Some(top_pid), locked: true },
        "the top-level file itself is proven"
    );
    match claim_here(&sub_path) {
        Err(Error::Blocked { holder: Some(holder), doubt: Doubt::NotNamed, .. }) if holder.pid == orphan.pid => {}
        other => panic!("expected Blocked by the child, which the file does not name, got {other:?}"),
    }
    let (code, json) = status_json(&subvolume, "web");
    assert_eq!((code, json["state"].as_str()), (Some(4), Some("unknown")), "{json}");
    assert_eq!(json["holder"]["pid"], u64::from(orphan.pid), "the holder named is not the child: {json}");

    let stop = pidfile_command(&subvolume, &["stop", "web"]);
    assert_eq!(stop.status.code(), Some(1), "{stop:?}");
    assert!(String::from_utf8_lossy(&stop.stderr).contains("not signalling anything"), "{stop:?}");
    assert!(process_lives(top_pid), "pidfile stop signalled the holder of the top-level file");
    assert!(orphan.lives());
    assert_eq!(top_holder.child.try_wait().unwrap(), None, "the top-level holder ended");
}

/// A stale pidfile that the image of a container brought in its lower (read-only) layer shows through the merged
/// directory: it is stale, and a claim takes it over (copying it up), after which it is proven as any other.
#[test]
fn overlayfs_stale_pidfile_of_the_lower_layer_is_stale_and_taken_over() {
    if !runs_as_root("to mount an overlayfs") {
        return;
    }
    let dead = common::dead_pid();
    let place = Place::overlay(&[("t-web.pid", &format!("{dead}\n"))]);
    let path = place.dir().join("t-web.pid");
    let lower = place.layer("lower").join("t-web.pid");

    assert_eq!(pidfiles::status_at(&path).unwrap(), Status::Stale { pid: Some(dead) });
    let (code, json) = status_json(place.dir(), "web");
    assert_eq!(
        (code, json["state"].as_str(), json["pid"].as_u64()),
        (Some(1), Some("stale"), Some(u64::from(dead))),
        "{json}"
    );

    let (mut holder, pid) = start_holder(&path);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
    assert_eq!(std::fs::read_to_string(&lower).unwrap(), format!("{dead}\n"), "the lower layer was written");
    assert_proven(place.dir(), &path, pid);
    match pidfiles::remove_at(&path) {
        Err(Error::InUse { pid: Some(named), .. }) => assert_eq!(named, pid),
        other => panic!("expected InUse, got {other:?}"),
    }

    holder.stop(9);
    assert_eq!(pidfiles::status_at(&path).unwrap(), Status::Stale { pid: Some(pid) });
    pidfiles::remove_at(&path).unwrap();
    assert_eq!(
        pidfiles::status_at(&path).unwrap(),
        Status::NotRunning,
        "the removal left the lower layer's file showing"
    );
    assert!(lower.exists(), "the removal reached into the lower layer");
}

/// The upper layer of a mounted overlayfs is another filesystem: a lock taken through the merged directory is not
/// seen on the upper layer's copy of the file, so from there a root service's pidfile is what a tool that does not
/// lock leaves. It still counts as running, by the rule for such files, and a claim through that path is refused.
#[test]
fn overlayfs_pidfile_seen_through_the_upper_layer_is_unlocked_but_still_running() {
    if !runs_as_root("to mount an overlayfs") {
        return;
    }
    let place = Place::overlay(&[]);
    let path = place.dir().join("t-web.pid");
    let upper = place.layer("upper");
    let upper_path = upper.join("t-web.pid");
    let (_holder, pid) = start_holder(&path);
    assert_eq!(std::fs::metadata(&upper_path).unwrap().ino(), std::fs::metadata(&path).unwrap().ino());

    assert_eq!(pidfiles::status_at(&upper_path).unwrap(), Status::Running { pid: Some(pid), locked: false });
    let (code, json) = status_json(&upper, "web");
    assert_eq!(
        (code, json["state"].as_str(), json["locked"].as_bool()),
        (Some(0), Some("running"), Some(false)),
        "{json}"
    );
    match claim_here(&upper_path) {
        Err(Error::AlreadyRunning { pid: Some(named), .. }) => assert_eq!(named, pid),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{pid}\n"));
    assert_proven(place.dir(), &path, pid);
}

// ---------------------------------------------------------------------------------------------------------------
// What every filesystem must do.
// ---------------------------------------------------------------------------------------------------------------

/// A claimer holds `dir`'s pidfile: it is proven, refused to a claim and a removal; SIGKILL leaves it stale, and a
/// new claim takes the same file over.
fn held_then_stale_then_taken_over(dir: &Path) {
    let path = dir.join("t-web.pid");
    let (mut holder, pid) = start_holder(&path);
    let inode = std::fs::metadata(&path).unwrap().ino();

    assert_proven(dir, &path, pid);
    match claim_here(&path) {
        Err(Error::AlreadyRunning { pid: named, .. }) => assert_eq!(named, Some(pid)),
        other => panic!("expected AlreadyRunning naming {pid}, got {other:?}"),
    }
    match pidfiles::remove_at(&path) {
        Err(Error::InUse { pid: Some(named), .. }) => assert_eq!(named, pid),
        other => panic!("expected InUse naming {pid}, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{pid}\n"),
        "a refused claim or removal touched the file"
    );

    holder.stop(9);
    assert!(path.exists(), "SIGKILL leaves the file");
    assert_eq!(pidfiles::status_at(&path).unwrap(), Status::Stale { pid: Some(pid) });
    let output = pidfile_command(dir, &["status", "web"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let (code, json) = status_json(dir, "web");
    assert_eq!(
        (code, json["state"].as_str(), json["pid"].as_u64(), json["locked"].as_bool()),
        (Some(1), Some("stale"), Some(u64::from(pid)), Some(false)),
        "{json}"
    );

    let (_next, next_pid) = start_holder(&path);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{next_pid}\n"));
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "the stale file was not taken over in place");
    assert_proven(dir, &path, next_pid);
}

/// A daemonizing claimer: it claims `dir`'s pidfile, forks a child that keeps the descriptor, and dies without
/// removing the file, as a daemonizing parent exits. The lock, held by a process that the file does not name, proves
/// nothing, but the file is not stale: it keeps claims and removals out until the child ends.
fn daemons_lock_is_not_stale(dir: &Path) {
    let path = dir.join("t-daemon.pid");
    let (mut starter, orphan) = start_daemon(&path);
    let starter_pid = starter.pid();
    // While the parent lives, its file and its lock prove it.
    assert_eq!(pidfiles::status_at(&path).unwrap(), Status::Running { pid: Some(starter_pid), locked: true });
    starter.stop(9);
    assert!(orphan.lives(), "the daemon's child ended too soon");

    let status = pidfiles::status_at(&path).unwrap();
    assert!(!matches!(status, Status::Stale { .. }), "a held lock was reported stale");
    assert!(
        matches!(status, Status::Unproven { pid: Some(pid), holder: Some(holder), doubt: Doubt::NotNamed }
            if pid == starter_pid && holder.pid == orphan.pid),
        "{status:?}"
    );
    match claim_here(&path) {
        Err(Error::Blocked { holder: Some(holder), doubt: Doubt::NotNamed, .. }) if holder.pid == orphan.pid => {}
        other => panic!("expected Blocked by the child, which the file does not name, got {other:?}"),
    }
    match pidfiles::remove_at(&path) {
        Err(Error::Blocked { doubt: Doubt::NotNamed, .. }) => {}
        other => panic!("expected the removal Blocked, got {other:?}"),
    }
    let output = pidfile_command(dir, &["status", "daemon"]);
    assert_eq!(output.status.code(), Some(4), "not unknown: {output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("locked by pid {} (user 0) but the file names another process", orphan.pid)),
        "{output:?}"
    );
    let (code, json) = status_json(dir, "daemon");
    assert_eq!((code, json["state"].as_str()), (Some(4), Some("unknown")), "{json}");
    assert!(orphan.lives(), "the checks ran after the daemon's child had ended");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{starter_pid}\n"),
        "a refused claim or removal touched the file"
    );

    // Once the child is gone too, the file is stale and taken over.
    orphan.kill();
    eventually("the daemon's lock is let go", || {
        pidfiles::status_at(&path).unwrap() == Status::Stale { pid: Some(starter_pid) }
    });
    let (_next, next_pid) = start_holder(&path);
    assert_proven(dir, &path, next_pid);
}

/// The library and the command both say that `pid`, holding `path` in `dir`, runs and is proven by its lock.
fn assert_proven(dir: &Path, path: &Path, pid: u32) {
    assert_eq!(pidfiles::status_at(path).unwrap(), Status::Running { pid: Some(pid), locked: true });
    let service = service_of(path);
    let output = pidfile_command(dir, &["status", service]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("{service} is running (pid {pid}, pidfile locked)")
    );
    let (code, json) = status_json(dir, service);
    assert_eq!(
        (code, json["state"].as_str(), json["pid"].as_u64(), json["locked"].as_bool()),
        (Some(0), Some("running"), Some(u64::from(pid)), Some(true)),
        "{json}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------------------------------------

/// Starts a claimer that holds `path` until it is killed; returns it and its pid.
fn start_holder(path: &Path) -> (Running, u32) {
    let path = path.to_str().unwrap();
    let mut holder = Running::start(claimer(&[], &["acquire", path, "ready", "wait-stdin"]));
    let pid = holder.pid();
    assert_eq!(holder.line(), format!("won {pid}"));
    assert_eq!(holder.line(), format!("ready {pid}"));
    (holder, pid)
}

/// Starts a claimer that claims `path` and forks a child keeping the descriptor (as a daemon does before its parent
/// exits); returns the claimer and its child.
fn start_daemon(path: &Path) -> (Running, Orphan) {
    let mut starter = Running::start(claimer(&[], &["acquire", path.to_str().unwrap(), "fork-hold", "wait-stdin"]));
    assert_eq!(starter.line(), format!("won {}", starter.pid()));
    let line = starter.line();
    let child = line
        .strip_prefix("child ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("expected the child's pid, got {line:?}"));
    (starter, Orphan::adopt(child))
}

/// A process that is not our child (a daemon's child, left to init when its parent dies), killed through a pidfd
/// when dropped and waited for, so that it keeps no file open on a filesystem about to be unmounted.
struct Orphan {
    pid: u32,
    pidfd: OwnedFd,
}

impl Orphan {
    fn adopt(pid: u32) -> Orphan {
        let raw = Pid::from_raw(pid as i32).expect("a pid");
        let pidfd = rustix::process::pidfd_open(raw, PidfdFlags::empty()).expect("open a pidfd for the child");
        Orphan { pid, pidfd }
    }

    fn lives(&self) -> bool {
        process_lives(self.pid)
    }

    /// Kills it and waits until it is gone (a zombie has let go of its files).
    fn kill(&self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
        for _ in 0..500 {
            if !self.lives() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Orphan {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Claims `path` from the test process, without signal handlers.
fn claim_here(path: &Path) -> Result<PidFile, Error> {
    PidFile::builder().signal_handlers(false).acquire(path)
}

/// The device and inode under which `/proc/locks` shows the `flock` taken by `pid`.
fn lock_table_file(locks: &str, pid: u32) -> String {
    locks
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.len() > 5 && fields[1] == "FLOCK" && fields[4] == pid.to_string())
        .map(|fields| fields[5].to_owned())
        .unwrap_or_else(|| panic!("no flock of pid {pid} in /proc/locks"))
}

// ---------------------------------------------------------------------------------------------------------------
// The `pidfile` command.
// ---------------------------------------------------------------------------------------------------------------

/// The `pidfile` command, which cargo builds next to the test binaries when it builds the workspace.
fn command_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let path = profile_dir.join("pidfile");
    assert!(
        path.is_file(),
        "{} is missing: build the command (cargo build -p pidfiles-cli, or run the tests with --workspace)",
        path.display()
    );
    path
}

/// Runs `pidfile --dir DIR --instance t ARGS...` with a clean environment.
fn pidfile_command(dir: &Path, args: &[&str]) -> Output {
    Command::new(command_path())
        .env_clear()
        .arg("--dir")
        .arg(dir)
        .args(["--instance", "t"])
        .args(args)
        .output()
        .expect("run the pidfile command")
}

/// `pidfile status --json SERVICE`: its exit code and what it printed.
fn status_json(dir: &Path, service: &str) -> (Option<i32>, serde_json::Value) {
    let output = pidfile_command(dir, &["status", "--json", service]);
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("{error}: {output:?}"));
    (output.status.code(), json)
}

/// The service of a pidfile named `t-SERVICE.pid`.
fn service_of(path: &Path) -> &str {
    let name = path.file_name().and_then(OsStr::to_str).unwrap();
    name.strip_prefix("t-").and_then(|name| name.strip_suffix(".pid")).unwrap()
}

// ---------------------------------------------------------------------------------------------------------------
// Filesystems.
// ---------------------------------------------------------------------------------------------------------------

/// A pid directory on a filesystem of its own, in a temporary directory under `/var/tmp` that is removed, with the
/// mount undone first, however the test ends.
struct Place {
    /// Where the pidfiles go.
    dir: PathBuf,
    /// Kept for its drop, which comes before `root`'s: `root` holds the mount point (and the image).
    _mount: Option<Mount>,
    root: tempfile::TempDir,
}

impl Place {
    fn root() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("pidfile-fs-").tempdir_in("/var/tmp").unwrap()
    }

    /// The canonical path of a new directory `name` in `root`: as `/proc/self/mountinfo` will name a mount on it.
    fn subdir(root: &tempfile::TempDir, name: &str) -> PathBuf {
        let dir = root.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    /// A directory on whatever filesystem holds `/var/tmp`.
    fn on_disk() -> Place {
        let root = Place::root();
        Place { dir: Place::subdir(&root, "pids"), _mount: None, root }
    }

    fn tmpfs() -> Place {
        let root = Place::root();
        let dir = Place::subdir(&root, "mnt");
        let mount = Mount::new(&dir, None, "tmpfs", &["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"]);
        Place { dir, _mount: Some(mount), root }
    }

    /// An overlayfs whose lower layer holds `lower_files` (name, content); pidfiles go in the merged directory.
    fn overlay(lower_files: &[(&str, &str)]) -> Place {
        let root = Place::root();
        let [lower, upper, work] = ["lower", "upper", "work"].map(|name| Place::subdir(&root, name));
        for (name, content) in lower_files {
            std::fs::write(lower.join(name), content).unwrap();
        }
        let dir = Place::subdir(&root, "merged");
        let options = format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
        let mount = Mount::new(&dir, None, "overlay", &["-t", "overlay", "-o", &options, "overlay"]);
        Place { dir, _mount: Some(mount), root }
    }

    /// A layer of an overlayfs made by [`Place::overlay`].
    fn layer(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The top-level volume of a new btrfs, loop-mounted from an image file.
    fn btrfs() -> Place {
        let mkfs = tool("mkfs.btrfs", "btrfs-progs");
        Place::image("btrfs", BTRFS_IMAGE_BYTES, &mkfs, &["-q"])
    }

    /// A new subvolume `name` of a btrfs made by [`Place::btrfs`], made before any file of the top-level volume.
    fn btrfs_subvolume(&self, name: &str) -> PathBuf {
        let subvolume = self.dir.join(name);
        let btrfs = tool("btrfs", "btrfs-progs");
        run(Command::new(btrfs).args(["subvolume", "create"]).arg(&subvolume));
        subvolume
    }

    /// A new xfs, loop-mounted from an image file.
    fn xfs() -> Place {
        let mkfs = tool("mkfs.xfs", "xfsprogs");
        Place::image("xfs", XFS_IMAGE_BYTES, &mkfs, &["-q"])
    }

    /// A filesystem of type `fstype` made by `mkfs` in a sparse image file of `bytes`, and loop-mounted.
    fn image(fstype: &str, bytes: u64, mkfs: &Path, mkfs_args: &[&str]) -> Place {
        assert!(
            Path::new("/dev/loop-control").exists(),
            "no loop devices here (/dev/loop-control is missing): load the loop module (modprobe loop), or give \
             the container the host's /dev/loop-control and /dev/loop*"
        );
        let root = Place::root();
        let image = root.path().join(format!("{fstype}.img"));
        std::fs::File::create(&image).unwrap().set_len(bytes).unwrap();
        let image = std::fs::canonicalize(image).unwrap();
        run(Command::new(mkfs).args(mkfs_args).arg(&image));
        let dir = Place::subdir(&root, "mnt");
        let image_arg = image.to_str().unwrap();
        let mount = Mount::new(&dir, Some(&image), fstype, &["-t", fstype, "-o", "loop", image_arg]);
        Place { dir, _mount: Some(mount), root }
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A mount on `target`, undone when dropped: `umount`, or `umount -l` if the filesystem is busy, and any loop device
/// still attached to its image detached.
struct Mount {
    target: PathBuf,
    image: Option<PathBuf>,
}

impl Mount {
    /// Runs `mount ARGS... TARGET` for a filesystem of type `fstype`. The guard exists before the command runs, so
    /// that whatever a failed mount left (a loop device) is undone too.
    fn new(target: &Path, image: Option<&Path>, fstype: &str, args: &[&str]) -> Mount {
        let mount_tool = tool("mount", "mount");
        tool("umount", "mount");
        if image.is_some() {
            tool("losetup", "mount");
        }
        require_kernel_support(fstype);
        let guard = Mount { target: target.to_owned(), image: image.map(Path::to_owned) };
        let output = Command::new(mount_tool).args(args).arg(target).output().unwrap();
        assert!(
            output.status.success(),
            "mount {} {} failed: {}",
            args.join(" "),
            target.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        assert!(is_mounted(target), "mount said it mounted {}, but it is not", target.display());
        guard
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let umount = find_tool("umount").unwrap_or_else(|| "umount".into());
        if is_mounted(&self.target) {
            let _ = Command::new(&umount).arg(&self.target).output();
        }
        if is_mounted(&self.target) {
            // Busy: detach it now, and let the kernel finish when the last file on it is closed.
            let _ = Command::new(&umount).arg("-l").arg(&self.target).output();
        }
        let mut left = Vec::new();
        if let Some(image) = &self.image {
            // `mount -o loop` sets the loop device to clear itself when unmounted; one still attached is detached
            // (a busy one is then cleared by the kernel once free).
            let losetup = find_tool("losetup").unwrap_or_else(|| "losetup".into());
            for device in loop_devices_of(&losetup, image) {
                let _ = Command::new(&losetup).arg("-d").arg(&device).output();
                left.push(device);
            }
        }
        let still_mounted = is_mounted(&self.target);
        if still_mounted && !std::thread::panicking() {
            panic!("{} is still mounted", self.target.display());
        }
        if !left.is_empty() {
            eprintln!("{}: loop devices still attached after the unmount, detached: {left:?}", self.target.display());
        }
    }
}

/// Whether something is mounted on `target` (a canonical path) in this process's mount namespace.
fn is_mounted(target: &Path) -> bool {
    let target = target.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(target))
}

/// The loop devices attached to `image`.
fn loop_devices_of(losetup: &Path, image: &Path) -> Vec<String> {
    let Ok(output) = Command::new(losetup).arg("-j").arg(image).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(':').next())
        .filter(|device| device.starts_with("/dev/"))
        .map(str::to_owned)
        .collect()
}

/// Fails, saying why, unless the kernel can mount `fstype`: it is built in or its module is loaded, or can be.
fn require_kernel_support(fstype: &str) {
    let known = || {
        std::fs::read_to_string("/proc/filesystems")
            .unwrap_or_default()
            .lines()
            .any(|line| line.split_whitespace().last() == Some(fstype))
    };
    if known() {
        return;
    }
    let tried = match find_tool("modprobe") {
        Some(modprobe) => match Command::new(modprobe).arg(fstype).output() {
            Ok(_) if known() => return,
            Ok(output) => {
                format!("`modprobe {fstype}` did not load it ({})", String::from_utf8_lossy(&output.stderr).trim())
            }
            Err(error) => format!("`modprobe {fstype}` did not run ({error})"),
        },
        None => "modprobe is missing (Debian package kmod)".to_owned(),
    };
    panic!(
        "the kernel cannot mount {fstype} here: it is not in /proc/filesystems, and {tried}. Load the {fstype} \
         module on the host (a container cannot), or run on a kernel built with it"
    );
}

/// Fails unless the filesystem of `dir` is `name` (by its `statfs` magic number).
fn assert_filesystem(dir: &Path, magic: u64, name: &str) {
    let found = rustix::fs::statfs(dir).unwrap().f_type as u64;
    assert_eq!(found, magic, "{} is on {}, not on {name}", dir.display(), filesystem_name(dir));
}

/// The type of the filesystem holding `dir`, as `stat -f` names it.
fn filesystem_name(dir: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|error| error.to_string())
}

/// The path of the program `name`, or a failure naming the Debian package that has it.
fn tool(name: &str, package: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!("{name} is missing: install the Debian package {package} (apt-get install {package})")
    })
}

/// Looks for the program `name` in PATH and in the system directories, which a user's PATH may leave out.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a command that must succeed, failing with what it printed otherwise.
fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
