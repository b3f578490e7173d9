//! The opening most scenarios share: a holder running its child, and a second contender waiting for the lease.

use std::time::Duration;

use super::contender::Contender;
use super::fence::{Fence, Tenure};
use super::{Etcd, POLL};

/// The bound on a contender taking a free lease and starting its child.
const FIRST_START_WITHIN: Duration = Duration::from_secs(15);

pub struct Scene {
    pub fence: Fence,
    /// Runs the child `first`.
    pub holder: Contender,
    pub first: Tenure,
    /// Waits for the lease.
    pub waiter: Contender,
}

impl Scene {
    /// The holder reaches the members through proxies when `holder_behind_proxies`; the waiter reaches them
    /// directly.
    pub fn open(etcd: &Etcd, holder_behind_proxies: bool) -> Scene {
        Scene::open_with(etcd, holder_behind_proxies, false)
    }

    /// The same, and with `ignoring_sigterm`, the holder's child ignores SIGTERM (it runs until SIGKILL).
    pub fn open_with(etcd: &Etcd, holder_behind_proxies: bool, ignoring_sigterm: bool) -> Scene {
        let fence = Fence::new();
        let command = if ignoring_sigterm { fence.command_ignoring_sigterm() } else { fence.command() };
        let holder = if holder_behind_proxies {
            Contender::start_behind_proxies("holder", etcd, command)
        } else {
            assert!(!ignoring_sigterm, "a holder ignoring SIGTERM is cut off through its proxies");
            Contender::start("holder", etcd, &fence)
        };
        let first = fence.wait_start(0, FIRST_START_WITHIN).unwrap_or_else(|| {
            panic!("the first contender's child did not start; its supervisor said:\n{}", holder.log())
        });
        assert_eq!(first.supervisor, holder.pid(), "the child's parent is the holder's supervisor");
        let waiter = Contender::start("waiter", etcd, &fence);
        // Long enough for the waiter to have asked several times, and been told the lease is taken.
        std::thread::sleep(POLL * 4);
        assert_eq!(fence.tenures().len(), 1, "the waiter started a child while the holder held the lease");
        Scene { fence, holder, first, waiter }
    }
}
