//! Property tests: the pid parser and the name validation never panic, and accept exactly what a simple model of
//! their rules accepts.

use proptest::prelude::*;

/// The model of a pid: ASCII whitespace (space, tab, newline, form feed, carriage return: not the vertical tab)
/// around ASCII digits whose value is 1 to 4194304 (Linux's largest pid).
fn model_pid(content: &[u8]) -> Option<u32> {
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let start = content.iter().position(|byte| !is_space(byte))?;
    let end = content.iter().rposition(|byte| !is_space(byte))? + 1;
    let digits = &content[start..end];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let significant = std::str::from_utf8(digits).unwrap().trim_start_matches('0');
    if significant.len() > 7 {
        return None;
    }
    let value: u32 = if significant.is_empty() { 0 } else { significant.parse().unwrap() };
    (1..=4_194_304).contains(&value).then_some(value)
}

/// The model of a name that can be part of a pidfile's name.
fn model_name_ok(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_matches_the_model_on_any_bytes(content in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(pidfiles::parse_pid(&content), model_pid(&content));
    }

    #[test]
    fn parser_matches_the_model_on_pid_like_text(content in "[ \t\r\n]{0,3}[-+0]{0,2}[0-9]{0,12}[ \t\r\n x]{0,3}") {
        prop_assert_eq!(pidfiles::parse_pid(content.as_bytes()), model_pid(content.as_bytes()));
    }

    #[test]
    fn parser_matches_the_model_around_every_kind_of_space(content in "[ \t\r\n\x0b\x0c]{0,3}[0-9]{1,8}[ \t\r\n\x0b\x0c]{0,3}") {
        prop_assert_eq!(pidfiles::parse_pid(content.as_bytes()), model_pid(content.as_bytes()));
    }

    #[test]
    fn parser_reads_back_every_pid_as_written(pid in 1u32..=4_194_304, newline in any::<bool>()) {
        let text = if newline { format!("{pid}\n") } else { pid.to_string() };
        prop_assert_eq!(pidfiles::parse_pid(text.as_bytes()), Some(pid));
    }

    #[test]
    fn names_are_accepted_exactly_when_the_model_accepts_them(name in "[a./\\x00-]{0,4}|\\PC{0,12}") {
        let config = pidfiles::Config::new("/run", "instance");
        let result = pidfiles::pidfile_path_with(&name, &config);
        prop_assert_eq!(result.is_ok(), model_name_ok(&name), "{:?}: {:?}", name, result);
        if let Ok(path) = result {
            prop_assert_eq!(path, std::path::PathBuf::from(format!("/run/instance-{name}.pid")));
        } else {
            let is_invalid_name = matches!(result, Err(pidfiles::Error::InvalidName { what: "service", .. }));
            prop_assert!(is_invalid_name);
        }
        let as_instance = pidfiles::pidfile_path_with("svc", &pidfiles::Config::new("/run", name.as_str()));
        prop_assert_eq!(as_instance.is_ok(), model_name_ok(&name));
    }
}
