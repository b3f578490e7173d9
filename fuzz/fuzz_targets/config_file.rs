//! The configuration file reader on any text: never a panic, and an error's line is a line of the text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err((Some(line), message)) = pidfiles::fuzzing::parse_config_text(text) {
        let lines = text.split('\n').count();
        assert!((1..=lines).contains(&line), "line {line} of {lines}: {message}");
        assert!(!message.contains('\n'), "a message of more than one line: {message:?}");
    }
});
