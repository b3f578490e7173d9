//! The command line's definition, shared with the xtask that writes the man page and the shell completions from it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::common::parse_duration;
use crate::signal::Signal;

/// Run, stop, check, wait for and list services by their pidfiles.
///
/// A service's pidfile is {dir}/{instance}-{service}.pid. The directory and instance come from --dir and
/// --instance, else from PIDFILE_DIR and PIDFILE_INSTANCE, else from the TOML file given by --config or
/// PIDFILE_CONFIG, else LPCONFIG for the instance, else /var/tmp and "default".
#[derive(Debug, Parser)]
#[command(name = "pidfile", version, max_term_width = 100)]
pub struct Cli {
    /// The directory holding the pidfiles.
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The instance name, the first part of each pidfile's name.
    #[arg(long, global = true, value_name = "NAME")]
    pub instance: Option<String>,
    /// A TOML configuration file (keys instance_name and pid_dir), instead of PIDFILE_CONFIG's.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Say what was done, also when all went well.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Make run, status, list, wait and stop cluster-wide: one instance of a service across every host using the
    /// etcd cluster at URL, etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (path, get and remove stay local).
    #[arg(long, global = true, value_name = "URL", env = "PIDFILE_CLUSTER", hide_env_values = true)]
    pub cluster: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the path of SERVICE's pidfile.
    #[command(after_help = "Example:\n  pidfile --instance staging path web    # /var/tmp/staging-web.pid")]
    Path(PathArgs),
    /// Print the pid in SERVICE's pidfile: exit 0, 1 when there is no pidfile, 4 when it holds no pid to stand behind
    /// (its state is unknown, it is empty or not written yet, or it is stale and written by another user).
    #[command(after_help = "Example:\n  kill -HUP \"$(pidfile get web)\"")]
    Get(GetArgs),
    /// Tell whether SERVICE runs, with the LSB init-script codes: 0 running, 1 dead but the pidfile exists
    /// (stale), 3 not running, 4 unknown (corrupt or unreadable pidfile, or a lock that proves nothing).
    ///
    /// With --cluster: the holder of SERVICE's lease in the etcd cluster (host, supervisor pid, fencing token, lease
    /// time left) beside the local pidfile's state; exit 0 when a host holds it, 3 when none does, 4 when etcd
    /// cannot tell (no quorum).
    #[command(
        after_help = "Examples:\n  pidfile status web || echo \"web is down\"\n  pidfile status web --json\n  pidfile status web --format prometheus"
    )]
    Status(StatusArgs),
    /// Run COMMAND as the one instance of SERVICE.
    ///
    /// By default the command stays as a supervisor: it claims the pidfile, starts COMMAND, writes COMMAND's pid,
    /// passes on SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to it, waits, removes the pidfile and
    /// exits with COMMAND's status (128+N if it died of signal N; 127 if COMMAND is not found, 126 if it cannot run).
    /// COMMAND runs in the supervisor's process group, in the terminal's foreground if run from one: it reads the
    /// terminal, and gets Ctrl-C, Ctrl-\ and hang-ups from the terminal itself, once (the supervisor passes on what
    /// processes send it, and of the terminal's signals only a hang-up that it gets alone, as the session's leader).
    /// COMMAND inherits the pidfile's lock, so no second instance can start while it lives, even if the supervisor
    /// is killed; if a process COMMAND started still holds the lock when COMMAND exits, the pidfile is left to it
    /// (and said so on stderr).
    ///
    /// With --background, the supervisor detaches (a new session; no terminal; standard input and output from and
    /// to /dev/null, or output appended to --log) and this command returns once COMMAND is ready: alive after
    /// --ready-after, or, with --notify, once it said READY=1. It exits 0 when COMMAND is ready; with COMMAND's
    /// status if COMMAND exited first (1 if that status was 0); 1 if the service is already running; and 1, after
    /// stopping COMMAND, if --timeout passed before READY=1. The supervisor keeps none of the caller's standard
    /// streams or other descriptors, so a start whose output goes to a pipe ends when this command does.
    ///
    /// With --exec, the pidfile is claimed for this process, which then becomes COMMAND, keeping the lock: the
    /// pidfile's pid is COMMAND's own, and the file stays (unlocked, so stale) after COMMAND exits.
    ///
    /// With --cluster, the supervisor also takes SERVICE's lease in the etcd cluster (waiting while another host
    /// holds it), gives COMMAND PIDFILE_FENCING_TOKEN, PIDFILE_CLUSTER_KEY and PIDFILE_CLUSTER_LEASE, stops it
    /// when the lease cannot be renewed (SIGTERM --kill-grace before its deadline, SIGKILL at it) and then exits
    /// with 75; COMMAND is killed if the supervisor dies. The processes COMMAND starts are stopped with it, even
    /// those orphaned on the way (the supervisor is their subreaper); when COMMAND exits by itself, those it left
    /// running get SIGTERM, then SIGKILL after --kill-grace, before the lease is let go. A supervisor killed by
    /// SIGKILL cannot do that: COMMAND dies with it, but what COMMAND started lives on.
    #[command(
        after_help = "Examples:\n  pidfile run web -- /usr/bin/web-server --port 8080\n  pidfile run --exec web -- /usr/bin/web-server --port 8080\n  pidfile run --background --log /var/log/web.log web -- /usr/bin/web-server --port 8080\n  pidfile run --background --notify --timeout 30s web -- /usr/bin/web-server --port 8080"
    )]
    Run(RunArgs),
    /// Stop SERVICE: send SIG to the process its pidfile proves live, wait for it to be gone, then SIGKILL it
    /// (unless --no-kill), and remove the pidfile if it is left stale. Exit 0 when stopped or not running, 1 when
    /// it could not be stopped.
    ///
    /// Refuses to signal pid 1 or this command's own pid, and refuses a pidfile that is world-writable or owned
    /// by a user other than us or root, since anyone could have named any process in it.
    ///
    /// With --cluster: stops the holder of SERVICE's cluster lease when it is on this host (its pidfile proves it);
    /// one on another host is left alone unless --revoke, which revokes its lease, so that its supervisor stops it.
    #[command(after_help = "Example:\n  pidfile stop web --signal INT --timeout 30s")]
    Stop(StopArgs),
    /// Wait until SERVICE runs (or, with --gone, until it does not): exit 0 when reached, 1 on timeout.
    #[command(after_help = "Example:\n  /usr/bin/web-server --daemon && pidfile wait web --timeout 10s")]
    Wait(WaitArgs),
    /// Remove SERVICE's pidfile when it is stale; refuse while the service runs.
    #[command(after_help = "Example:\n  pidfile remove web")]
    Remove(RemoveArgs),
    /// List the pidfiles of the instance (or of all instances) in the pid directory: service, pid, state, since.
    #[command(
        after_help = "Examples:\n  pidfile list\n  pidfile list --all-instances --json\n  pidfile list --prometheus > /var/lib/node_exporter/textfile/pidfile.prom.tmp &&\n    mv /var/lib/node_exporter/textfile/pidfile.prom.tmp /var/lib/node_exporter/textfile/pidfile.prom"
    )]
    List(ListArgs),
}

/// The arguments of `pidfile path`.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// The service.
    pub service: String,
}

/// The arguments of `pidfile get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The service.
    pub service: String,
}

/// The arguments of `pidfile status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The service.
    pub service: String,
    /// How to print the answer: a sentence, one JSON object (service, instance, path, pid, state, locked, since), or
    /// the Prometheus text exposition format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Short for --format json.
    #[arg(long)]
    pub json: bool,
}

impl StatusArgs {
    /// The format asked for, by `--format` or `--json`.
    pub fn format(&self) -> Result<Format, String> {
        Format::chosen(self.format, &[(self.json, Format::Json)])
    }
}

/// The arguments of `pidfile run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The service.
    pub service: String,
    /// Become COMMAND instead of supervising it.
    #[arg(long, conflicts_with = "background")]
    pub exec: bool,
    /// Start COMMAND under a detached supervisor, and return once it is ready: exit 0 then, else with COMMAND's
    /// status (1 if it exited with 0) or 1 if it was not ready in time.
    #[arg(long)]
    pub background: bool,
    /// Append COMMAND's output to FILE (created with mode 0640; never through a symbolic link, nor into another
    /// user's file in a directory anyone can write to, such as /tmp) instead of discarding it.
    #[arg(long, value_name = "FILE", requires = "background")]
    pub log: Option<PathBuf>,
    /// COMMAND is ready once it has lived this long [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "background", conflicts_with = "notify")]
    pub ready_after: Option<Duration>,
    /// COMMAND is ready when it sends READY=1 to the socket named by $NOTIFY_SOCKET, as under systemd's
    /// Type=notify (sd_notify, systemd-notify --ready).
    #[arg(long, requires = "background")]
    pub notify: bool,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
    /// With --cluster: the lease's time to live, whole seconds, at least 2s.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub ttl: Option<Duration>,
    /// With --cluster: how long before the lease's deadline COMMAND gets SIGTERM when renewals fail, before
    /// SIGKILL at the deadline (default: a fifth of the TTL); also how long the processes COMMAND left running when
    /// it exited get between SIGTERM and SIGKILL.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub kill_grace: Option<Duration>,
    /// With --cluster: give up at once (exit 1) when another host holds the lease, instead of waiting for it.
    #[arg(long = "try", conflicts_with = "timeout")]
    pub try_once: bool,
    /// How long the start may wait at most. With --notify: for READY=1 (default 90s), past which COMMAND is stopped
    /// and the start fails. With --cluster: for the lease (default: for ever), past which it gives up (exit 1).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
}

impl RunArgs {
    /// The command's name, for messages: on one line, its control characters escaped (`\n`).
    pub fn program(&self) -> String {
        self.command[0]
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
            .collect()
    }
}

/// The arguments of `pidfile stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The service.
    pub service: String,
    /// The signal to send first: a name (TERM, SIGTERM), a number, or a real-time signal (RTMIN+N, RTMAX-N).
    #[arg(long, default_value = "TERM", value_name = "SIG")]
    pub signal: Signal,
    /// How long to wait for the process to be gone (500ms, 20s, 2m).
    #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Duration,
    /// Do not send SIGKILL when the timeout passes.
    #[arg(long)]
    pub no_kill: bool,
    /// With --cluster, when SERVICE runs on another host: revoke its lease, so that its supervisor stops it.
    #[arg(long)]
    pub revoke: bool,
}

/// The arguments of `pidfile wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The service.
    pub service: String,
    /// Wait until the service does not run.
    #[arg(long)]
    pub gone: bool,
    /// How long to wait at most (500ms, 20s, 2m).
    #[arg(long, default_value = "20s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Duration,
}

/// The arguments of `pidfile remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The service.
    pub service: String,
}

/// The arguments of `pidfile list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// List every instance's pidfiles, not only this instance's.
    #[arg(long)]
    pub all_instances: bool,
    /// How to print the list: a table, a JSON array of objects, or the Prometheus text exposition format (for
    /// node_exporter's textfile collector).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
    /// Short for --format json.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Short for --format prometheus.
    #[arg(long)]
    pub prometheus: bool,
}

impl ListArgs {
    /// The format asked for, by `--format`, `--json` or `--prometheus`.
    pub fn format(&self) -> Result<Format, String> {
        Format::chosen(self.format, &[(self.json, Format::Json), (self.prometheus, Format::Prometheus)])
    }
}

/// How `status` and `list` print what they found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: a sentence, or a table.
    Text,
    /// JSON: an object per service.
    Json,
    /// The Prometheus text exposition format.
    Prometheus,
}

impl Format {
    /// The format that `--format` and the short forms (`--json`, given with whether each was) ask for together,
    /// text by default. A short form beside a `--format` of another value contradicts it.
    fn chosen(format: Option<Format>, short_forms: &[(bool, Format)]) -> Result<Format, String> {
        let short = short_forms.iter().find(|&&(given, _)| given).map(|&(_, format)| format);
        match (format, short) {
            (Some(long), Some(short)) if long != short => {
                Err(format!("--{} contradicts --format {}", short.name(), long.name()))
            }
            (long, short) => Ok(long.or(short).unwrap_or(Format::Text)),
        }
    }

    /// The value's name on the command line.
    fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Prometheus => "prometheus",
        }
    }
}
