//! The pidfile parser on any bytes: never a panic, and whatever it accepts is a pid that reads back the same.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|content: &[u8]| {
    if let Some(pid) = pidfiles::parse_pid(content) {
        assert!((1..=4_194_304).contains(&pid), "accepted {pid} from {content:?}");
        let digits: Vec<u8> = content.iter().copied().filter(u8::is_ascii_digit).collect();
        let significant: Vec<u8> = digits.iter().copied().skip_while(|&digit| digit == b'0').collect();
        assert_eq!(
            significant,
            pid.to_string().into_bytes(),
            "accepted {pid} from {content:?}"
        );
        assert!(
            content
                .iter()
                .all(|byte| byte.is_ascii_digit() || byte.is_ascii_whitespace())
        );
    }
});
