//! The receiving end of systemd's readiness protocol: a datagram socket whose path the command finds in
//! `NOTIFY_SOCKET`, to which it sends `READY=1` (with `sd_notify`, `systemd-notify --ready`, or a few lines of any
//! language) once it serves.
//!
//! The socket lies in a directory of its own, mode 0700, so that only our user (and root) can tell the supervisor
//! that the service is ready; an abstract socket (`@name`) would take a message from any process of the network
//! namespace. Both go when the socket is dropped.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A bound notification socket, removed with its directory when dropped.
pub struct NotifySocket {
    socket: UnixDatagram,
    dir: PathBuf,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds a socket in a new private directory under the temporary directory (`TMPDIR`, else `/tmp`).
    pub fn bind() -> io::Result<NotifySocket> {
        let dir = private_dir()?;
        let path = dir.join("notify");
        match UnixDatagram::bind(&path) {
            Ok(socket) => Ok(NotifySocket { socket, dir, path }),
            Err(error) => {
                let _ = std::fs::remove_dir(&dir);
                Err(io::Error::new(error.kind(), format!("{}: {error}", path.display())))
            }
        }
    }

    /// The path to put into the command's `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits up to `wait` for a message; whether one came that says `READY=1`.
    pub fn ready_within(&self, wait: Duration) -> io::Result<bool> {
        // A zero timeout would mean "wait forever".
        self.socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut message = [0; 4096];
        match self.socket.recv(&mut message) {
            Ok(length) => Ok(says_ready(&message[..length])),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether a message already received, and not read yet, says `READY=1`; reads them all, without waiting.
    pub fn said_ready(&self) -> io::Result<bool> {
        self.socket.set_nonblocking(true)?;
        let mut message = [0; 4096];
        let mut ready = false;
        // Bounded, so that a process that keeps sending cannot keep the supervisor here; the queue holds fewer
        // (net.unix.max_dgram_qlen).
        for _ in 0..1024 {
            match self.socket.recv(&mut message) {
                Ok(length) => ready |= says_ready(&message[..length]),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            }
        }
        self.socket.set_nonblocking(false)?;
        Ok(ready)
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        // A later message (STATUS=, WATCHDOG=1) then fails at once, instead of filling a queue no one reads and
        // blocking its sender.
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Whether a notification message holds the line `READY=1` (it is newline-separated `KEY=VALUE` assignments).
fn says_ready(message: &[u8]) -> bool {
    message.split(|&byte| byte == b'\n').any(|line| line == b"READY=1")
}

/// Creates a directory only we can enter, under a name no one else took first.
fn private_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut attempt = 0;
    loop {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.subsec_nanos());
        let dir = base.join(format!("pidfile-notify-{}-{nanos:x}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(error) => return Err(io::Error::new(error.kind(), format!("{}: {error}", dir.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_one_line_of_the_message() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=serving\nREADY=1\n"));
        assert!(!says_ready(b"READY=0"));
        assert!(!says_ready(b"STATUS=READY=1"));
        assert!(!says_ready(b""));
    }

    #[test]
    fn a_message_sent_to_the_path_is_received_and_the_socket_goes_when_dropped() {
        let socket = NotifySocket::bind().unwrap();
        let path = socket.path().to_owned();
        assert!(!socket.ready_within(Duration::from_millis(1)).unwrap(), "nothing sent yet");
        UnixDatagram::unbound().unwrap().send_to(b"READY=1", &path).unwrap();
        assert!(socket.ready_within(Duration::from_secs(10)).unwrap());
        drop(socket);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }
}
