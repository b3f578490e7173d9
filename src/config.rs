//! Where pidfiles live and what they are called.
//!
//! A [`PidConfig`] names a directory and an instance; a service name and a configuration together make the
//! pidfile's path, `{pid_dir}/{instance_name}-{service}.pid`, so that several instances of a deployment can run the
//! same services on one machine side by side.
//!
//! The process-wide configuration, used by the functions without a `_with` suffix, is resolved once, value by
//! value, from the first of these that gives it:
//!
//! | value           | 1            | 2                  | 3                                       | 4          | 5          |
//! |-----------------|--------------|--------------------|-----------------------------------------|------------|------------|
//! | `pid_dir`       | [`set_config`] | `PIDFILE_DIR`    | `pid_dir` (or `[canonical] pid_dir`) in the TOML file named by `PIDFILE_CONFIG` | `/var/tmp` | |
//! | `instance_name` | [`set_config`] | `PIDFILE_INSTANCE` | `instance_name` in that file          | `LPCONFIG` | `default`  |
//!
//! An empty environment variable counts as unset. A configuration file that cannot be read, does not parse or holds
//! a key other than these is an error naming the file and the line; it is never silently ignored. Reading the file needs the crate's
//! `config-file` feature (on by default): without it, naming a configuration file is an error naming the file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::Error;

/// The two values that place a pidfile: the directory and the instance name.
///
/// Any application type can implement it, so an application's own configuration object can be passed to the
/// `_with` functions directly.
///
/// ```
/// use std::path::Path;
/// use pidfiles::{pidfile_path_with, PidConfig};
///
/// struct MyConfig;
///
/// impl PidConfig for MyConfig {
///     fn pid_dir(&self) -> &Path {
///         Path::new("/var/tmp")
///     }
///     fn instance_name(&self) -> &str {
///         "blah"
///     }
/// }
///
/// assert_eq!(pidfile_path_with("beans", &MyConfig)?, Path::new("/var/tmp/blah-beans.pid"));
/// # Ok::<(), pidfiles::Error>(())
/// ```
pub trait PidConfig {
    /// The directory that holds the pidfiles.
    fn pid_dir(&self) -> &Path;
    /// The name of this instance of the deployment, the first part of each pidfile's name.
    fn instance_name(&self) -> &str;
}

/// A plain [`PidConfig`]: a directory and an instance name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pid_dir: PathBuf,
    instance_name: String,
}

impl Config {
    /// A configuration placing pidfiles in `pid_dir`, named after `instance_name`.
    ///
    /// Names are checked when a path is made from them, not here.
    pub fn new(pid_dir: impl Into<PathBuf>, instance_name: impl Into<String>) -> Config {
        Config { pid_dir: pid_dir.into(), instance_name: instance_name.into() }
    }

    /// Resolves a configuration now, from the environment, as [`config()`] does on first use, but reading the
    /// configuration file `config_file` instead of the one named by `PIDFILE_CONFIG` when it is given. It does not
    /// touch the process-wide configuration: a command-line tool uses it to apply its own options on top.
    pub fn resolve(config_file: Option<&Path>) -> Result<Config, Error> {
        let file = config_file.map(|path| path.as_os_str().to_owned());
        resolve(|name| match (name, &file) {
            ("PIDFILE_CONFIG", Some(file)) => Some(file.clone()),
            _ => std::env::var_os(name),
        })
        .map_err(Error::from)
    }

    /// The same configuration with another directory.
    pub fn with_pid_dir(mut self, pid_dir: impl Into<PathBuf>) -> Config {
        self.pid_dir = pid_dir.into();
        self
    }

    /// The same configuration with another instance name.
    pub fn with_instance_name(mut self, instance_name: impl Into<String>) -> Config {
        self.instance_name = instance_name.into();
        self
    }
}

impl PidConfig for Config {
    fn pid_dir(&self) -> &Path {
        &self.pid_dir
    }
    fn instance_name(&self) -> &str {
        &self.instance_name
    }
}

impl<T: PidConfig + ?Sized> PidConfig for &T {
    fn pid_dir(&self) -> &Path {
        (**self).pid_dir()
    }
    fn instance_name(&self) -> &str {
        (**self).instance_name()
    }
}

/// The directory used when nothing else names one: the spec's `/var/tmp`.
pub const DEFAULT_PID_DIR: &str = "/var/tmp";
/// The instance name used when nothing else names one.
pub const DEFAULT_INSTANCE_NAME: &str = "default";

/// The resolved process-wide configuration, or the error that stopped its resolution. The error is kept as a
/// message (not an `Error`) because it must be handed out again on every use.
static PROCESS_CONFIG: OnceLock<Result<Config, ConfigFileProblem>> = OnceLock::new();

#[derive(Debug, Clone)]
struct ConfigFileProblem {
    path: PathBuf,
    line: Option<usize>,
    message: String,
}

impl From<ConfigFileProblem> for Error {
    fn from(problem: ConfigFileProblem) -> Error {
        Error::ConfigFile { path: problem.path, line: problem.line, message: problem.message }
    }
}

/// The process-wide configuration, resolved on first use.
///
/// Each value comes from the first of these that gives it:
///
/// - `pid_dir`: [`set_config`]; the environment variable `PIDFILE_DIR`; `pid_dir` (or `pid_dir` under
///   `[canonical]`, the original module's layout) in the TOML file named by `PIDFILE_CONFIG`; `/var/tmp`.
/// - `instance_name`: [`set_config`]; `PIDFILE_INSTANCE`; `instance_name` in that file; `LPCONFIG` (so that
///   services share pidfiles with deployments of the original module); `default`.
///
/// An empty environment variable counts as unset. Any other key in the file is an error naming the key and its
/// line, so that a misspelt key (`pid-dir`) is not silently without effect.
///
/// # Panics
///
/// When the configuration file named by `PIDFILE_CONFIG` cannot be read or does not parse, with the error naming
/// the file and the line. The crate's own functions never panic on it: they return the error. Use
/// [`try_config`] to handle it.
pub fn config() -> &'static Config {
    match try_config() {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    }
}

/// The process-wide configuration, resolved on first use, or the error that a broken configuration file causes.
pub fn try_config() -> Result<&'static Config, Error> {
    PROCESS_CONFIG
        .get_or_init(|| resolve(|name| std::env::var_os(name)))
        .as_ref()
        .map_err(|problem| problem.clone().into())
}

/// Sets the process-wide configuration, for an application that knows it at start-up.
///
/// It must come before anything uses the configuration; afterwards it returns [`Error::ConfigAlreadySet`].
///
/// ```
/// pidfiles::set_config(pidfiles::Config::new("/run/myapp", "staging"))?;
/// assert_eq!(pidfiles::pidfile_path("web")?, std::path::Path::new("/run/myapp/staging-web.pid"));
/// # Ok::<(), pidfiles::Error>(())
/// ```
pub fn set_config(config: Config) -> Result<(), Error> {
    PROCESS_CONFIG.set(Ok(config)).map_err(|_| Error::ConfigAlreadySet)
}

/// The values a configuration file may give. Any other key is refused (see [`KNOWN_KEYS`]): a misspelt key would
/// otherwise leave its value silently unused.
#[derive(Debug, Default)]
#[cfg_attr(feature = "config-file", derive(serde::Deserialize), serde(deny_unknown_fields))]
pub(crate) struct ConfigFile {
    instance_name: Option<String>,
    pid_dir: Option<PathBuf>,
    canonical: Option<CanonicalSection>,
}

#[derive(Debug, Default)]
#[cfg_attr(feature = "config-file", derive(serde::Deserialize), serde(deny_unknown_fields))]
pub(crate) struct CanonicalSection {
    pid_dir: Option<PathBuf>,
}

fn resolve(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Config, ConfigFileProblem> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let file = match env("PIDFILE_CONFIG") {
        Some(path) => read_config_file(Path::new(&path))?,
        None => ConfigFile::default(),
    };
    let file_pid_dir = file.pid_dir.or(file.canonical.and_then(|section| section.pid_dir));
    let pid_dir =
        env("PIDFILE_DIR").map(PathBuf::from).or(file_pid_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_PID_DIR));
    let instance_name = env("PIDFILE_INSTANCE")
        .map(|value| value.to_string_lossy().into_owned())
        .or(file.instance_name)
        .or_else(|| env("LPCONFIG").map(|value| value.to_string_lossy().into_owned()))
        .unwrap_or_else(|| DEFAULT_INSTANCE_NAME.to_owned());
    Ok(Config { pid_dir, instance_name })
}

/// The most a configuration file may hold: far more than its few keys need, and a bound on what a mistaken path
/// (`/dev/zero`, a log file) can make us read.
#[cfg(feature = "config-file")]
const MAX_CONFIG_FILE: usize = 64 * 1024;

/// Reads and parses a configuration file: a regular file (a FIFO would block, a device could be endless), opened
/// without blocking, of at most [`MAX_CONFIG_FILE`] bytes of UTF-8 text.
#[cfg(feature = "config-file")]
fn read_config_file(path: &Path) -> Result<ConfigFile, ConfigFileProblem> {
    use rustix::fs::{FileType, Mode, OFlags};
    let problem = |line, message| ConfigFileProblem { path: path.to_owned(), line, message };
    let cannot_read =
        |error: rustix::io::Errno| problem(None, format!("cannot read it: {}", std::io::Error::from(error)));
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let file = rustix::fs::openat(rustix::fs::CWD, path, flags, Mode::empty()).map_err(cannot_read)?;
    let stat = rustix::fs::fstat(&file).map_err(cannot_read)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(problem(None, "it is not a regular file".to_owned()));
    }
    let mut text = vec![0u8; MAX_CONFIG_FILE + 1];
    let mut filled = 0;
    while filled < text.len() {
        match rustix::io::read(&file, &mut text[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(cannot_read(error)),
        }
    }
    if filled > MAX_CONFIG_FILE {
        return Err(problem(None, format!("it is larger than {} KiB", MAX_CONFIG_FILE / 1024)));
    }
    text.truncate(filled);
    let text = String::from_utf8(text).map_err(|_| problem(None, "it is not UTF-8 text".to_owned()))?;
    parse_config_file(&text).map_err(|(line, message)| problem(line, message))
}

/// Without the `config-file` feature no file is read: naming one is an error, never silently ignored.
#[cfg(not(feature = "config-file"))]
fn read_config_file(path: &Path) -> Result<ConfigFile, ConfigFileProblem> {
    Err(ConfigFileProblem { path: path.to_owned(), line: None, message: CONFIG_FILE_FEATURE_OFF.to_owned() })
}

/// Why a configuration file is refused by a build without the `config-file` feature.
#[cfg(not(feature = "config-file"))]
const CONFIG_FILE_FEATURE_OFF: &str =
    "not read: the pidfiles library was built without its `config-file` feature, which reads configuration files";

/// The keys a configuration file may hold at its top, and under `[canonical]` (the original module's layout): the
/// fields of [`ConfigFile`] and [`CanonicalSection`].
#[cfg(feature = "config-file")]
const KNOWN_KEYS: [&str; 3] = ["instance_name", "pid_dir", "canonical"];
#[cfg(feature = "config-file")]
const KNOWN_CANONICAL_KEYS: [&str; 1] = ["pid_dir"];

/// Parses the text of a configuration file; an error carries its line (from 1) and a one-line message.
#[cfg(feature = "config-file")]
pub(crate) fn parse_config_file(text: &str) -> Result<ConfigFile, (Option<usize>, String)> {
    use serde::Deserialize;
    let located = |error: toml::de::Error| {
        let line = error.span().map(|span| line_of(text, span.start));
        (line, error.message().trim().replace('\n', " "))
    };
    let table = toml::de::DeTable::parse(text).map_err(located)?;
    check_keys(text, table.get_ref())?;
    let file = ConfigFile::deserialize(toml::de::Deserializer::from(table)).map_err(located)?;
    if file.pid_dir.is_some() && file.canonical.as_ref().is_some_and(|section| section.pid_dir.is_some()) {
        return Err((None, "pid_dir is given twice, at the top and under [canonical]".to_owned()));
    }
    Ok(file)
}

/// Refuses a key that is not one of [`KNOWN_KEYS`] (or of [`KNOWN_CANONICAL_KEYS`] under `[canonical]`), naming it
/// and its line, and the keys that are known. (serde's own refusal would name it too, but in serde's words.)
#[cfg(feature = "config-file")]
fn check_keys(text: &str, table: &toml::de::DeTable<'_>) -> Result<(), (Option<usize>, String)> {
    let unknown = |key: &toml::Spanned<toml::de::DeString<'_>>, section: &str, known: &[&str]| {
        let line = line_of(text, key.span().start);
        let known = known.join(", ");
        (Some(line), format!("unknown key {:?}{section} (known keys: {known})", key.get_ref().as_ref()))
    };
    for (key, value) in table {
        if !KNOWN_KEYS.contains(&key.get_ref().as_ref()) {
            return Err(unknown(key, "", &KNOWN_KEYS));
        }
        if let toml::de::DeValue::Table(section) = value.get_ref() {
            if let Some(key) = section.keys().find(|key| !KNOWN_CANONICAL_KEYS.contains(&key.get_ref().as_ref())) {
                return Err(unknown(key, " under [canonical]", &KNOWN_CANONICAL_KEYS));
            }
        }
    }
    Ok(())
}

#[cfg(feature = "config-file")]
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// Checks a service or instance name: it becomes part of a file name, so it must be one.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is a directory name")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what, name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// The pidfile path of `service` under `config`: `{pid_dir}/{instance_name}-{service}.pid`.
pub fn pidfile_path_with(service: &str, config: &impl PidConfig) -> Result<PathBuf, Error> {
    validate_name("service", service)?;
    let instance = config.instance_name();
    validate_name("instance", instance)?;
    Ok(config.pid_dir().join(format!("{instance}-{service}.pid")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    #[cfg(feature = "config-file")]
    fn config_files_that_are_not_small_regular_text_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let large = dir.path().join("large.toml");
        std::fs::write(&large, format!("# {}\n", "x".repeat(MAX_CONFIG_FILE))).unwrap();
        let binary = dir.path().join("binary.toml");
        std::fs::write(&binary, b"instance_name = \"\xff\"\n").unwrap();
        for (path, expected) in [
            (fifo, "it is not a regular file"),
            (PathBuf::from("/dev/zero"), "it is not a regular file"),
            (large, "it is larger than 64 KiB"),
            (binary, "it is not UTF-8 text"),
        ] {
            let problem = read_config_file(&path).unwrap_err();
            assert_eq!((problem.path.as_path(), problem.message.as_str()), (path.as_path(), expected));
        }
        let fine = dir.path().join("fine.toml");
        std::fs::write(&fine, "instance_name = \"prod\"\n").unwrap();
        assert_eq!(read_config_file(&fine).unwrap().instance_name.as_deref(), Some("prod"));
    }

    fn resolve_from(vars: &[(&str, &str)]) -> Result<Config, ConfigFileProblem> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        resolve(|name| vars.get(name).map(Into::into))
    }

    #[test]
    fn defaults_are_var_tmp_and_default() {
        assert_eq!(resolve_from(&[]).unwrap(), Config::new("/var/tmp", "default"));
    }

    #[test]
    fn environment_overrides_defaults_and_lpconfig_names_the_instance() {
        assert_eq!(resolve_from(&[("LPCONFIG", "lp")]).unwrap(), Config::new("/var/tmp", "lp"));
        let config = resolve_from(&[("LPCONFIG", "lp"), ("PIDFILE_INSTANCE", "mine"), ("PIDFILE_DIR", "/run")]);
        assert_eq!(config.unwrap(), Config::new("/run", "mine"));
        assert_eq!(resolve_from(&[("PIDFILE_INSTANCE", "")]).unwrap(), Config::new("/var/tmp", "default"));
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn config_file_gives_values_below_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pidfile.toml");
        std::fs::write(&file, "instance_name = \"filed\"\n[canonical]\npid_dir = \"/srv/pids\"\n").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(
            resolve_from(&[("PIDFILE_CONFIG", file), ("LPCONFIG", "lp")]).unwrap(),
            Config::new("/srv/pids", "filed")
        );
        assert_eq!(
            resolve_from(&[("PIDFILE_CONFIG", file), ("PIDFILE_DIR", "/d"), ("PIDFILE_INSTANCE", "i")]).unwrap(),
            Config::new("/d", "i")
        );
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn broken_config_file_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broken.toml");
        std::fs::write(&file, "instance_name = \"ok\"\n\npid_dir = [oops\n").unwrap();
        let problem = resolve_from(&[("PIDFILE_CONFIG", file.to_str().unwrap())]).unwrap_err();
        let message = Error::from(problem).to_string();
        assert!(message.contains(file.to_str().unwrap()), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn wrongly_typed_value_is_an_error_with_its_line() {
        let (line, message) = parse_config_file("\ninstance_name = 5\n").unwrap_err();
        assert_eq!(line, Some(2), "{message}");
    }

    #[test]
    #[cfg(not(feature = "config-file"))]
    fn without_the_feature_a_named_config_file_is_an_error_naming_it_and_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pidfile.toml");
        std::fs::write(&file, "instance_name = \"filed\"\n").unwrap();
        for message in [
            Error::from(resolve_from(&[("PIDFILE_CONFIG", file.to_str().unwrap())]).unwrap_err()).to_string(),
            Config::resolve(Some(&file)).unwrap_err().to_string(),
        ] {
            assert!(message.contains(file.to_str().unwrap()), "{message}");
            assert!(message.contains("`config-file` feature"), "{message}");
        }
        // Without a file named, the environment and the defaults still give the configuration.
        assert_eq!(
            resolve_from(&[("PIDFILE_INSTANCE", "i"), ("PIDFILE_CONFIG", "")]).unwrap(),
            Config::new("/var/tmp", "i")
        );
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let problem = resolve_from(&[("PIDFILE_CONFIG", "/nonexistent/pidfile.toml")]).unwrap_err();
        assert!(Error::from(problem).to_string().contains("/nonexistent/pidfile.toml"));
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn unknown_key_is_an_error_naming_it_its_line_and_the_known_keys() {
        let text = "instance_name = \"prod\"\n\npid-dir = \"/run\"\n";
        let (line, message) = parse_config_file(text).unwrap_err();
        assert_eq!(line, Some(3));
        assert_eq!(message, "unknown key \"pid-dir\" (known keys: instance_name, pid_dir, canonical)");
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn unknown_key_under_canonical_is_an_error_naming_the_section() {
        let (line, message) = parse_config_file("[canonical]\npid_dir = \"/a\"\nroot = \"/b\"\n").unwrap_err();
        assert_eq!(line, Some(3));
        assert_eq!(message, "unknown key \"root\" under [canonical] (known keys: pid_dir)");
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn unknown_table_is_an_error_at_its_header() {
        let (line, message) = parse_config_file("instance_name = \"prod\"\n[app]\nport = 80\n").unwrap_err();
        assert_eq!(line, Some(2));
        assert!(message.starts_with("unknown key \"app\""), "{message}");
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn every_known_key_is_accepted() {
        let file = parse_config_file("instance_name = \"i\"\n[canonical]\npid_dir = \"/c\"\n").unwrap();
        assert_eq!(file.canonical.and_then(|section| section.pid_dir), Some(PathBuf::from("/c")));
        let file = parse_config_file("instance_name = \"i\"\npid_dir = \"/p\"\n").unwrap();
        assert_eq!((file.instance_name.as_deref(), file.pid_dir), (Some("i"), Some(PathBuf::from("/p"))));
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn unknown_key_in_the_file_named_by_the_environment_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pidfile.toml");
        std::fs::write(&file, "instance_name = \"filed\"\ninstance = \"typo\"\n").unwrap();
        let problem = resolve_from(&[("PIDFILE_CONFIG", file.to_str().unwrap())]).unwrap_err();
        assert_eq!(
            Error::from(problem).to_string(),
            format!(
                "configuration file {}, line 2: unknown key \"instance\" (known keys: instance_name, pid_dir, canonical)",
                file.display()
            )
        );
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn pid_dir_twice_is_an_error() {
        assert!(parse_config_file("pid_dir = \"/a\"\n[canonical]\npid_dir = \"/b\"\n").is_err());
    }

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "a\0b"] {
            assert!(matches!(validate_name("service", bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        for good in ["nuts", "a.b", "-", "...", "web-1"] {
            validate_name("service", good).unwrap();
        }
    }
}
