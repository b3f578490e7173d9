//! The side-by-side comparison: our claim-and-release cycle against libbsd's and against the bare system calls,
//! on tmpfs and on the disk's file system, and `pidfile status` against `start-stop-daemon --status` and
//! `pgrep -F`, all measured in one run, interleaved, as ratios of medians.
//!
//! ```text
//! cargo bench -p pidfiles-cli --bench compare
//! ```
//!
//! It builds its C peer (`benches/peers/cycle.c`) with `cc` and libbsd (Debian: gcc, libbsd-dev), and runs
//! start-stop-daemon (dpkg) and pgrep (procps).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pidfiles::PidFile;

/// Cycles per sample, and samples per contender; contenders take turns sample by sample.
const CYCLES: u32 = 2000;
const SAMPLES: usize = 21;
/// Whole-process runs per contender, taking turns.
const RUNS: usize = 201;

fn main() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let peer = build_peer(work.path());
    println!("Claim + release cycle (median of {SAMPLES} samples of {CYCLES} cycles, ns per cycle)\n");
    println!("| file system | ours | libbsd | minimal C | ours / minimal C | ours / libbsd |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, base) in
        [("tmpfs (/dev/shm)", PathBuf::from("/dev/shm")), ("disk (/var/tmp)", PathBuf::from("/var/tmp"))]
    {
        // Straight in the directory, as pidfiles are kept: a directory of ours inside a shared one (a temporary
        // directory in /dev/shm) would have its way walked again at every claim.
        let path = base.join(format!("pidfiles-bench-{}.pid", std::process::id()));
        let mut ours = Vec::new();
        let mut libbsd = Vec::new();
        let mut minimal = Vec::new();
        for sample in 0..SAMPLES {
            // Alternate who goes first, so that no contender always follows the same one.
            let mut turns: [&mut dyn FnMut(); 3] = [
                &mut || ours.push(our_cycles(&path)),
                &mut || libbsd.push(peer_cycles(&peer, "libbsd", &path)),
                &mut || minimal.push(peer_cycles(&peer, "minimal", &path)),
            ];
            turns.rotate_left(sample % 3);
            for turn in turns {
                turn();
            }
        }
        let _ = std::fs::remove_file(&path);
        let (ours, libbsd, minimal) = (median(ours), median(libbsd), median(minimal));
        println!(
            "| {label} | {ours:.0} | {libbsd:.0} | {minimal:.0} | {:.2}x | {:.2}x |",
            ours / minimal,
            ours / libbsd
        );
    }

    println!("\nChecking a running service, as a whole process (median of {RUNS} runs, microseconds per run)\n");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench-svc.pid");
    let _held = PidFile::builder().signal_handlers(false).acquire(&path).expect("claim the pidfile to check");
    let ours =
        [env!("CARGO_BIN_EXE_pidfile"), "--dir", dir.path().to_str().unwrap(), "--instance", "bench", "status", "svc"];
    // The documented install: a musl build, statically linked. Then a statically linked glibc build, and the
    // default, dynamically linked one that `cargo build` makes.
    let musl_binary = build_for("x86_64-unknown-linux-musl", None);
    let static_binary = build_for(&host_triple(), Some("-C target-feature=+crt-static"));
    let with_binary = |binary: &Path| -> Vec<String> {
        std::iter::once(binary.to_str().unwrap().to_owned())
            .chain(ours[1..].iter().map(|arg| (*arg).to_owned()))
            .collect()
    };
    let (ours_musl, ours_static) = (with_binary(&musl_binary), with_binary(&static_binary));
    let ours_musl: Vec<&str> = ours_musl.iter().map(String::as_str).collect();
    let ours_static: Vec<&str> = ours_static.iter().map(String::as_str).collect();
    let path_text = path.to_str().unwrap();
    let ssd = ["start-stop-daemon", "--status", "--pidfile", path_text];
    let pgrep = ["pgrep", "-F", path_text];
    let contenders: [(&str, &[&str]); 5] = [
        ("pidfile status (installed: musl, static)", &ours_musl),
        ("pidfile status (glibc, static)", &ours_static),
        ("pidfile status (glibc, default dynamic build)", &ours),
        ("start-stop-daemon --status", &ssd),
        ("pgrep -F", &pgrep),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for run in 0..RUNS {
        for turn in 0..contenders.len() {
            let index = (turn + run) % contenders.len();
            times[index].push(time_process(contenders[index].1));
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    println!("| command | µs | installed `pidfile status` / this | dynamic `pidfile status` / this |");
    println!("|---|---:|---:|---:|");
    for ((name, _), time) in contenders.iter().zip(&medians) {
        println!("| {name} | {time:.0} | {:.2}x | {:.2}x |", medians[0] / time, medians[2] / time);
    }
}

/// Our cycle: `PidFile::acquire` without signal handlers, then drop. Nanoseconds per cycle.
fn our_cycles(path: &Path) -> f64 {
    let builder = PidFile::builder().signal_handlers(false);
    let start = Instant::now();
    for _ in 0..CYCLES {
        drop(builder.acquire(path).expect("claim"));
    }
    start.elapsed().as_nanos() as f64 / f64::from(CYCLES)
}

fn peer_cycles(peer: &Path, mode: &str, path: &Path) -> f64 {
    let output = Command::new(peer).arg(mode).arg(CYCLES.to_string()).arg(path).output().expect("run the C peer");
    assert!(output.status.success(), "{mode}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().expect("nanoseconds per cycle")
}

/// Microseconds for one run of a command, from spawn to exit.
fn time_process(argv: &[&str]) -> f64 {
    let start = Instant::now();
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run a contender");
    let elapsed = start.elapsed().as_nanos() as f64 / 1000.0;
    assert_eq!(status.code(), Some(0), "{argv:?} does not see the service running");
    elapsed
}

/// The triple of the machine we run on.
fn host_triple() -> String {
    let rustc = Command::new("rustc").arg("-vV").output().expect("run rustc -vV");
    String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .expect("the host triple")
}

/// Builds the `pidfile` command in release for `target` (with `rustflags`, if any), in a target directory of its
/// own so that it does not disturb the benchmark's build. The musl target must be installed
/// (`rustup target add x86_64-unknown-linux-musl`), as the README's install section says.
fn build_for(target: &str, rustflags: Option<&str>) -> PathBuf {
    let flavour = if rustflags.is_some() { "-flags" } else { "" };
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("install-build-{target}{flavour}"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the pidfile command for {target} (once; later runs reuse it)...");
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--release", "-p", "pidfiles-cli", "--target", target, "--target-dir"])
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(rustflags) = rustflags {
        build.env("RUSTFLAGS", rustflags);
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "the build for {target} failed (is the target installed? rustup target add {target})");
    target_dir.join(target).join("release").join("pidfile")
}

fn build_peer(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/cycle.c");
    let binary = dir.join("cycle");
    let output = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(source)
        .arg("-lbsd")
        .output()
        .expect("run cc (Debian: gcc)");
    assert!(
        output.status.success(),
        "cannot build the C peer (Debian: libbsd-dev): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
