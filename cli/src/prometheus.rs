//! The Prometheus text exposition format of services' reports, as node_exporter's textfile collector reads it.

use std::fmt::Write;

use crate::state::State;
use crate::status::Report;

/// The Prometheus text exposition format, as node_exporter's textfile collector reads it.
pub fn exposition(reports: &[Report]) -> String {
    let mut out = String::new();
    let labels = |report: &Report| {
        format!("instance=\"{}\",service=\"{}\"", escape_label(&report.instance), escape_label(&report.service))
    };
    let _ = writeln!(out, "# HELP pidfile_up Whether the service runs (1) or not (0), by its pidfile.");
    let _ = writeln!(out, "# TYPE pidfile_up gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_up{{{}}} {}", labels(report), u8::from(report.state == State::Running));
    }
    let _ = writeln!(out, "# HELP pidfile_locked Whether a lock held on the pidfile proves the service runs.");
    let _ = writeln!(out, "# TYPE pidfile_locked gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_locked{{{}}} {}", labels(report), u8::from(report.locked));
    }
    let _ = writeln!(
        out,
        "# HELP pidfile_unknown Whether the service's state is unknown (1): the pidfile is unreadable, corrupt, or locked in a way that proves nothing."
    );
    let _ = writeln!(out, "# TYPE pidfile_unknown gauge");
    for report in reports {
        let _ = writeln!(out, "pidfile_unknown{{{}}} {}", labels(report), u8::from(report.state == State::Unknown));
    }
    let _ = writeln!(out, "# HELP pidfile_pid The process id the pidfile names.");
    let _ = writeln!(out, "# TYPE pidfile_pid gauge");
    for report in reports {
        if let Some(pid) = report.pid {
            let _ = writeln!(out, "pidfile_pid{{{}}} {pid}", labels(report));
        }
    }
    let _ = writeln!(
        out,
        "# HELP pidfile_start_time_seconds When the pidfile was last written, in seconds since the epoch."
    );
    let _ = writeln!(out, "# TYPE pidfile_start_time_seconds gauge");
    for report in reports {
        if let Some(since) = report.since_epoch {
            let _ = writeln!(out, "pidfile_start_time_seconds{{{}}} {since:.3}", labels(report));
        }
    }
    out
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
