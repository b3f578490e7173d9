//! The command line's definition, shared with the xtask that writes the man page and the shell completions from it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::common::{parse_duration, parse_signal};

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
    /// Print the pid in SERVICE's pidfile: exit 0, 1 when there is no pidfile, 4 when it is corrupt or unreadable.
    #[command(after_help = "Example:\n  kill -HUP \"$(pidfile get web)\"")]
    Get(GetArgs),
    /// Tell whether SERVICE runs, with the LSB init-script codes: 0 running, 1 dead but the pidfile exists
    /// (stale), 3 not running, 4 unknown (corrupt or unreadable pidfile).
    ///
    /// With --cluster: the holder of SERVICE's lease in the etcd cluster (host, supervisor pid, fencing token, lease
    /// time left) beside the local pidfile's state; exit 0 when a host holds it, 3 when none does, 4 when etcd
    /// cannot tell (no quorum).
    #[command(after_help = "Example:\n  pidfile status web || echo \"web is down\"\n  pidfile status web --json")]
    Status(StatusArgs),
    /// Run COMMAND as the one instance of SERVICE.
    ///
    /// By default the command stays as a supervisor: it claims the pidfile, starts COMMAND, writes COMMAND's pid,
    /// forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to it, waits, removes the pidfile and exits
    /// with COMMAND's status (128+N if it died of signal N). COMMAND inherits the pidfile's lock, so no second
    /// instance can start while it lives, even if the supervisor is killed; if a process COMMAND started still holds
    /// the lock when COMMAND exits, the pidfile is left to it (and said so on stderr). With --exec, the pidfile is claimed
    /// for this process, which then becomes COMMAND, keeping the lock: the pidfile's pid is COMMAND's own, and the
    /// file stays (unlocked, so stale) after COMMAND exits.
    ///
    /// With --cluster, the supervisor also takes SERVICE's lease in the etcd cluster (waiting while another host
    /// holds it), gives COMMAND PIDFILE_FENCING_TOKEN, PIDFILE_CLUSTER_KEY and PIDFILE_CLUSTER_LEASE, stops it
    /// when the lease cannot be renewed (SIGTERM --kill-grace before its deadline, SIGKILL at it) and then exits
    /// with 75; COMMAND is killed if the supervisor dies.
    #[command(
        after_help = "Examples:\n  pidfile run web -- /usr/bin/web-server --port 8080\n  pidfile run --exec web -- /usr/bin/web-server --port 8080"
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
        after_help = "Examples:\n  pidfile list\n  pidfile list --all-instances --json\n  pidfile list --prometheus > /var/lib/node_exporter/textfile/pidfile.prom"
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
    /// Print one JSON object: service, instance, path, pid, state, locked, since.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `pidfile run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The service.
    pub service: String,
    /// Become COMMAND instead of supervising it.
    #[arg(long)]
    pub exec: bool,
    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// With --cluster: the lease's time to live, whole seconds, at least 2s.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub ttl: Option<Duration>,
    /// With --cluster: how long before the lease's deadline COMMAND gets SIGTERM when renewals fail, before
    /// SIGKILL at the deadline (default: a fifth of the TTL).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub kill_grace: Option<Duration>,
    /// With --cluster: give up at once (exit 1) when another host holds the lease, instead of waiting for it.
    #[arg(long = "try", conflicts_with = "timeout")]
    pub try_once: bool,
    /// With --cluster: how long to wait for the lease at most before giving up (exit 1); default: for ever.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
}

/// The arguments of `pidfile stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The service.
    pub service: String,
    /// The signal to send first, by name (TERM, SIGTERM) or number.
    #[arg(long, default_value = "TERM", value_parser = parse_signal, value_name = "SIG")]
    pub signal: i32,
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
    /// Print a JSON array of objects.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,
    /// Print the Prometheus text exposition format, for node_exporter's textfile collector.
    #[arg(long)]
    pub prometheus: bool,
}
