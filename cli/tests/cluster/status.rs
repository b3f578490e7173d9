//! `status` and `list` over the cluster name the holder as etcd knows it: host, pid, token and lease time left.

use crate::harness::scene::Scene;
use crate::harness::views::{list_json, status};
use crate::harness::{Etcd, one_at_a_time};

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
    assert!(list.names(&scene.first), "list does not name the holder {:?}: {list}", scene.first);
    assert!(!json.is_null());
    scene.fence.check(&[]);
}
