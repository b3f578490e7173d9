//! The command's help: an example for every subcommand, and lines that fit in 100 columns however wide the terminal
//! (`pidfile --help`, `pidfile -h`, and the same for every subcommand).
//!
//! The binary tested here is built with the dev-dependencies' features too, and divan's turn on clap's `wrap_help`;
//! `.ci/smoke` checks the width again on a build without them, which must turn it on itself.

use std::process::{Command, Stdio};

use crate::util::{BIN, Place, stdout};

/// The widest a line of help may be.
const MAX_COLUMNS: usize = 100;

/// `pidfile ARGS...`'s standard output, as on a terminal 200 columns wide: clap wraps help at the terminal's width,
/// capped by the command's `max_term_width`, so the cap is what this sees.
fn help(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("COLUMNS", "200")
        // The width comes from whichever of stdout, stderr and stdin is a terminal, before COLUMNS: none here.
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "pidfile {args:?} failed: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands that `pidfile --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let help = help(&["--help"]);
    let listed = help.split_once("\nCommands:\n").expect("a list of commands").1.split("\n\n").next().unwrap();
    listed
        .lines()
        // A command's line starts with its name, two columns in; the lines its description wraps onto, further in.
        .filter_map(|line| line.strip_prefix("  ").filter(|rest| !rest.starts_with(' ')))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_is_listed() {
    assert_eq!(subcommands(), ["path", "get", "status", "run", "stop", "wait", "remove", "list"]);
}

#[test]
fn no_line_of_help_is_wider_than_100_columns() {
    let mut invocations: Vec<Vec<String>> = vec![vec!["--help".into()], vec!["-h".into()]];
    for subcommand in subcommands() {
        invocations.push(vec![subcommand.clone(), "--help".into()]);
        invocations.push(vec![subcommand, "-h".into()]);
    }
    let mut too_wide = Vec::new();
    for args in &invocations {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for line in help(&args).lines() {
            let columns = line.chars().count();
            if columns > MAX_COLUMNS {
                too_wide.push(format!("pidfile {}: {columns} columns: {line}", args.join(" ")));
            }
        }
    }
    assert!(too_wide.is_empty(), "lines wider than {MAX_COLUMNS} columns:\n{}", too_wide.join("\n"));
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let place = Place::new();
    for subcommand in ["path", "get", "status", "run", "stop", "wait", "remove", "list"] {
        let output = place.run(&[subcommand, "--help"]);
        assert!(output.status.success(), "{subcommand}");
        assert!(stdout(&output).contains("Example"), "{subcommand} --help has no example");
    }
}

#[test]
fn list_help_writes_the_prometheus_file_whole_with_mv() {
    let place = Place::new();
    let help = stdout(&place.run(&["list", "--help"]));
    assert!(help.contains("pidfile.prom.tmp &&") && help.contains("mv "), "{help}");
}
