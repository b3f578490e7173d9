//! A signal to send, parsed from the command line: a name (`TERM`, `SIGTERM`, any case), a number, or a real-time
//! signal counted from either end of the range the C library leaves to programs (`RTMIN+3`, `SIGRTMAX-1`).

use std::fmt;
use std::str::FromStr;

/// A signal that can be sent to a process: a standard one, or a real-time one of the running system's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(i32);

/// The standard signals of Linux, by number, as `kill -l` names them (without `SIG`).
const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

impl Signal {
    /// SIGKILL, what `stop` sends last.
    pub const KILL: Signal = Signal(libc::SIGKILL);

    /// The signal's number.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Whether this is a real-time signal (which has no name of its own).
    pub fn is_realtime(self) -> bool {
        Self::realtime().contains(&self.0)
    }

    /// The real-time signals programs may use: glibc keeps the first two or three of the kernel's for itself, so the
    /// range is the C library's, asked at run time, not a constant.
    fn realtime() -> std::ops::RangeInclusive<i32> {
        libc::SIGRTMIN()..=libc::SIGRTMAX()
    }

    /// The signal numbered `number`, if it is a standard or a usable real-time signal.
    fn from_number(number: i32) -> Option<Signal> {
        let known = NAMES.iter().any(|&(_, named)| named == number) || Self::realtime().contains(&number);
        known.then_some(Signal(number))
    }

    /// `RTMIN`, `RTMIN+N`, `RTMAX` or `RTMAX-N` (already without `SIG`, in capitals), counted within the range.
    fn from_realtime_name(name: &str) -> Option<Signal> {
        let range = Self::realtime();
        let (base, sign, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
            (*range.start(), 1, rest.strip_prefix('+'))
        } else if let Some(rest) = name.strip_prefix("RTMAX") {
            (*range.end(), -1, rest.strip_prefix('-'))
        } else {
            return None;
        };
        // `RTMIN5` or `RTMAX+1` are typos, not signals.
        let offset = if name.len() == 5 { 0 } else { digits(rest?)? };
        let number = base.checked_add(sign * offset)?;
        range.contains(&number).then_some(Signal(number))
    }
}

/// A number written in decimal digits only: no sign, no spaces.
fn digits(text: &str) -> Option<i32> {
    (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(text: &str) -> Result<Signal, String> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let found = match digits(text) {
            Some(number) => Signal::from_number(number),
            None => NAMES
                .iter()
                .find(|&&(known, _)| known == name)
                .map(|&(_, number)| Signal(number))
                .or_else(|| Signal::from_realtime_name(name)),
        };
        found.ok_or_else(|| {
            let range = Signal::realtime();
            format!(
                "invalid signal {text:?}: give a name such as TERM, a number such as 15, or a real-time signal RTMIN+N \
                 or RTMAX-N ({} to {} here)",
                range.start(),
                range.end()
            )
        })
    }
}

impl fmt::Display for Signal {
    /// `SIGTERM`; a real-time signal counted from the start of its range, `SIGRTMIN+3`, or `SIGRTMAX` for the last.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = Signal::realtime();
        if let Some(&(name, _)) = NAMES.iter().find(|&&(_, number)| number == self.0) {
            write!(formatter, "SIG{name}")
        } else if self.0 == *range.start() {
            write!(formatter, "SIGRTMIN")
        } else if self.0 == *range.end() {
            write!(formatter, "SIGRTMAX")
        } else {
            write!(formatter, "SIGRTMIN+{}", self.0 - range.start())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<i32, String> {
        text.parse::<Signal>().map(Signal::number)
    }

    #[test]
    fn names_are_taken_with_or_without_sig_in_any_case() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("sigint"), Ok(2));
        assert_eq!(parse("Usr1"), Ok(10));
        assert_eq!(parse("PWR"), Ok(30));
    }

    #[test]
    fn numbers_are_taken_when_they_name_a_signal() {
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("16"), Ok(16));
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse(&min.to_string()), Ok(min));
        assert_eq!(parse(&max.to_string()), Ok(max));
    }

    #[test]
    fn real_time_signals_are_counted_within_the_c_librarys_range() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(parse("RTMIN"), Ok(min));
        assert_eq!(parse("rtmin+3"), Ok(min + 3));
        assert_eq!(parse("SIGRTMIN+3"), Ok(min + 3));
        assert_eq!(parse("RTMAX"), Ok(max));
        assert_eq!(parse("SIGRTMAX-2"), Ok(max - 2));
        assert_eq!(parse(&format!("RTMIN+{}", max - min)), Ok(max));
    }

    #[test]
    fn what_names_no_usable_signal_is_refused_naming_the_value() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let beyond = [format!("RTMIN+{}", max - min + 1), format!("RTMAX-{}", max - min + 1), (max + 1).to_string()];
        let reserved = (32..min).map(|number| number.to_string());
        let bad = ["", "0", "-15", "+15", " 15", "NOPE", "SIG", "RTMIN-1", "RTMAX+1", "RTMIN3", "RTMIN+", "RTMIN+x"];
        for text in bad.into_iter().map(str::to_owned).chain(beyond).chain(reserved) {
            let message = parse(&text).expect_err(&text);
            assert!(message.starts_with(&format!("invalid signal {text:?}: ")), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn display_gives_the_name() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(Signal(libc::SIGTERM).to_string(), "SIGTERM");
        assert_eq!(Signal::KILL.to_string(), "SIGKILL");
        assert_eq!(Signal(min).to_string(), "SIGRTMIN");
        assert_eq!(Signal(min + 3).to_string(), "SIGRTMIN+3");
        assert_eq!(Signal(max).to_string(), "SIGRTMAX");
        for text in ["TERM", "SIGRTMIN+3", "SIGRTMAX", "HUP"] {
            assert_eq!(
                text.parse::<Signal>().unwrap().to_string().trim_start_matches("SIG"),
                text.trim_start_matches("SIG")
            );
        }
    }
}
