//! A TCP proxy on loopback in front of one etcd member, which a test can blackhole (a partition) and heal.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the proxy's threads look up from their sockets to see whether they must stop or change mode.
const TICK: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    blackholed: AtomicBool,
    /// Changes at every blackhole and heal: a connection that lived through a blackhole lost bytes, and is closed
    /// at the heal rather than resumed mid-stream.
    epoch: AtomicU64,
    /// CLOCK_MONOTONIC nanoseconds of the last bytes a client sent through, forwarded or dropped.
    last_request: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A proxy listening on its own loopback port; it stops, closing every connection, when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding from a new loopback port to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a port for the proxy");
        listener.set_nonblocking(true).expect("a nonblocking listener");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let upstream = upstream.to_owned();
        let accepting = Arc::clone(&shared);
        let listener = std::thread::spawn(move || accept(&listener, &upstream, &accepting));
        Proxy { port, shared, listener: Some(listener) }
    }

    /// The address clients connect to: `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops forwarding in both directions: connections stay open, and what either side sends is dropped, as on a
    /// network that lost its route. New connections are accepted and get nothing.
    pub fn blackhole(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.blackholed.store(true, Ordering::SeqCst);
    }

    /// Forwards again (connections that lived through the blackhole are closed).
    pub fn heal(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.blackholed.store(false, Ordering::SeqCst);
    }

    /// When a client last sent something through (CLOCK_MONOTONIC nanoseconds, 0: never).
    pub fn last_request(&self) -> u64 {
        self.shared.last_request.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap_or_else(|poison| poison.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn accept(listener: &TcpListener, upstream: &str, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(_) => continue,
        };
        // A dead member refuses the connection: so does the proxy, by closing it at once.
        let Ok(server) = TcpStream::connect(upstream) else { continue };
        let epoch = shared.epoch.load(Ordering::SeqCst);
        let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else { continue };
        let mut threads = shared.threads.lock().unwrap_or_else(|poison| poison.into_inner());
        threads.retain(|thread| !thread.is_finished());
        for (from, to, from_client) in [(client_reader, server, true), (server_reader, client, false)] {
            let shared = Arc::clone(shared);
            threads.push(std::thread::spawn(move || pump(from, to, from_client, epoch, &shared)));
        }
    }
}

/// Copies one direction of a connection until either side closes, the proxy stops, or a heal ends it.
fn pump(mut from: TcpStream, mut to: TcpStream, from_client: bool, epoch: u64, shared: &Shared) {
    let _ = from.set_read_timeout(Some(TICK));
    let _ = to.set_write_timeout(Some(Duration::from_secs(1)));
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let blackholed = shared.blackholed.load(Ordering::SeqCst);
        if !blackholed && shared.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        if from_client {
            shared.last_request.store(super::now_nanos(), Ordering::SeqCst);
        }
        // Looked at again after the read: bytes read while blackholed are lost, not forwarded late.
        if shared.blackholed.load(Ordering::SeqCst) || shared.epoch.load(Ordering::SeqCst) != epoch {
            continue;
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
