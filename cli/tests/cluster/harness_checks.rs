//! The harness's own parts, checked without the command: the members it starts, kills and restarts, its proxy,
//! and its oracle, which must see a violation where there is one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::Duration;

use crate::harness::etcd::http;
use crate::harness::fence::Fence;
use crate::harness::proxy::Proxy;
use crate::harness::{Etcd, one_at_a_time};

#[test]
fn a_killed_member_rejoins_and_the_cluster_elects_a_leader_without_it() {
    let _one = one_at_a_time();
    let Some(mut etcd) = Etcd::own() else { return };
    let leader = etcd.members().leader().expect("a leader");
    etcd.members().kill(leader);
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    etcd.members().wait_healthy(&others).expect("two members keep quorum");
    let new_leader = etcd.members().leader().expect("a new leader");
    assert_ne!(new_leader, leader);
    etcd.members().restart(leader);
    etcd.members().wait_healthy(&[0, 1, 2]).expect("the member rejoins");
}

#[test]
fn the_proxy_forwards_drops_while_blackholed_and_forwards_again_once_healed() {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::shared() else { return };
    let proxy = Proxy::start(&etcd.endpoints()[0]);
    let port: u16 = proxy.endpoint().rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(http(port, "GET", "/health", "").unwrap().contains("true"));

    proxy.blackhole();
    let mut stream = TcpStream::connect(proxy.endpoint()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    assert!(read.is_err() && answer.is_empty(), "a blackholed proxy answered: {read:?} {answer:?}");
    assert!(http(port, "GET", "/health", "").is_err());

    proxy.heal();
    assert!(http(port, "GET", "/health", "").unwrap().contains("true"));
}

#[test]
fn the_oracle_sees_two_children_at_once_and_a_stale_token() {
    let fence = Fence::new();
    let writer = |token: &str| -> Child {
        let command = fence.command();
        Command::new(&command[0]).args(&command[1..]).env("PIDFILE_FENCING_TOKEN", token).spawn().unwrap()
    };
    let mut newer = writer("7");
    assert!(fence.wait_start(0, Duration::from_secs(5)).is_some());
    let mut older = writer("5");
    std::thread::sleep(Duration::from_millis(300));
    for child in [&mut newer, &mut older] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));

    let verdict = fence.judge(&[]);
    eprintln!("{verdict}");
    assert!(verdict.stale_refused > 0, "the fence refused none of the stale token's writes");
    let text = verdict.violations.join("\n");
    assert!(text.contains("token 5 started after token 7"), "{text}");
    assert!(text.contains("still ran"), "{text}");
    assert!(!text.contains("accepted a write with token 5"), "the fence accepted a stale write: {text}");
}

#[test]
fn the_oracle_sees_a_child_outliving_its_supervisor() {
    let fence = Fence::new();
    // A shell starts the writer and exits without it: the writer runs on, adopted by another process.
    let status = Command::new("sh")
        .args(["-c", "PIDFILE_FENCING_TOKEN=3 \"$@\" & sleep 0.3", "sh"])
        .args(fence.command())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(fence.wait_start(0, Duration::from_secs(5)).is_some());

    let verdict = fence.judge(&[]);
    let text = verdict.violations.join("\n");
    assert!(text.contains("outlived its supervisor"), "{text}");
}
