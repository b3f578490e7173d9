//! `status` and `list` over the cluster name the holder as etcd knows it: host, pid, token and lease time left.

use crate::harness::scene::Scene;
use crate::harness::views::{host, list_json, status};
use crate::harness::{Etcd, TTL, one_at_a_time};

#[test]
fn status_and_list_name_the_holder_from_another_host() {
    let _one = one_at_a_time();
    let Some(etcd) = Etcd::shared() else { return };
    let scene = Scene::open(&etcd, false);

    let status = status(&scene.waiter);
    eprintln!("status --cluster while held: {status}");
    assert!(status.success, "{status}");
    assert!(status.names(&scene.first), "status does not name the holder {:?}: {status}", scene.first);
    assert!(status.stdout.to_lowercase().contains("ttl") || status.stdout.contains("lease"), "{status}");

    let list = list_json(&scene.waiter);
    eprintln!("list --cluster --json while held: {list}");
    assert!(list.success, "{list}");
    let json: serde_json::Value = serde_json::from_str(&list.stdout).expect("list --json prints JSON");
    let holders = json.as_array().expect("list --json prints an array");
    assert_eq!(holders.len(), 1, "one lease under the test's prefix: {list}");
    let holder = &holders[0];
    assert_eq!(holder["host"].as_str(), Some(host().as_str()), "{list}");
    assert_eq!(holder["pid"].as_u64(), Some(u64::from(scene.first.supervisor)), "{list}");
    assert_eq!(holder["token"].as_u64(), Some(scene.first.token), "{list}");
    let ttl_left = holder["ttl_left"].as_f64().expect("the lease's time left");
    assert!(ttl_left > 0.0 && ttl_left <= TTL.as_secs_f64(), "{list}");
    scene.fence.check(&[]);
}
