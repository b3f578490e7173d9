//! Removing pidfiles when the process ends: at normal exit (`exit`, or returning from `main`) and on SIGINT and
//! SIGTERM. This is the only code that runs inside a signal handler.
//!
//! Every held pidfile is registered in a fixed table of slots. Registering and unregistering happen in ordinary
//! code; the table is read by the exit hook and by the signal handler, which must not allocate or take a lock, so
//! each slot is a single atomic pointer:
//!
//! - registering allocates the entry (path as a C string, file identity, owner pid) *before* publishing it with a
//!   compare-and-swap into an empty slot;
//! - the handler *swaps* each slot to empty, so that it alone owns every entry it found, and never frees one (the
//!   process is about to end; freeing is not async-signal-safe);
//! - unregistering swaps its slot back to empty only if it still holds its own entry, and frees the entry only
//!   then. If the handler took it first, the entry is left to the dying process.
//!
//! For each entry it owns, the handler checks that this process is the one that claimed the file (a forked child
//! is not) and that the path still names the locked file, then unlinks it, with two system calls on a ready C
//! string. The lock is released afterwards, when the process ends and its descriptors close. Then the handler
//! restores the default action and raises the signal again, so the process dies of it and its parent sees so.

// The gate: the table of atomic pointers that a signal handler reads without a lock, and the handler's
// registration, which signal-hook can only offer as unsafe.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::path::Path;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::sys::{self, FileId};
use crate::{Error, remove};

/// How many pidfiles one process can hold at once.
pub(crate) const SLOTS: usize = 64;

struct Entry {
    path: CString,
    id: FileId,
    owner: u32,
}

static TABLE: [AtomicPtr<Entry>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// A registered pidfile's place in the table, to unregister it.
#[derive(Debug)]
pub(crate) struct Registration {
    slot: usize,
    entry: usize,
}

/// Registers a claimed pidfile for removal at exit, and installs the exit hook on first use.
pub(crate) fn register(path: &Path, id: FileId, owner: u32) -> Result<Registration, Error> {
    install_exit_hook();
    let entry = Entry { path: sys::c_path(path)?, id, owner };
    let entry = Box::into_raw(Box::new(entry));
    for (slot, cell) in TABLE.iter().enumerate() {
        if cell.compare_exchange(ptr::null_mut(), entry, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Ok(Registration { slot, entry: entry as usize });
        }
    }
    // SAFETY: the entry was never published, so this is its only owner.
    drop(unsafe { Box::from_raw(entry) });
    Err(Error::TooManyPidFiles { path: path.to_owned(), limit: SLOTS })
}

/// Takes a pidfile out of the table. Returns `false` when the exit hook or a signal handler took it first: the
/// process is then ending, and has removed (or is removing) the file itself.
pub(crate) fn unregister(registration: Registration) -> bool {
    let entry = registration.entry as *mut Entry;
    match TABLE[registration.slot].compare_exchange(entry, ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {
            // SAFETY: the slot held our entry and is now empty, so no one else can reach it.
            drop(unsafe { Box::from_raw(entry) });
            true
        }
        Err(_) => false,
    }
}

/// Removes every registered pidfile that this process claimed and that its path still names.
///
/// Async-signal-safe: atomic swaps, `getpid`, and per entry one `fstatat` and one `unlink` on a C string that was
/// allocated before. Nothing is allocated or freed, and no lock is taken.
fn remove_all_registered() {
    let me = rustix::process::getpid().as_raw_pid() as u32;
    for cell in &TABLE {
        let entry = cell.swap(ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: the swap made this the only owner of a published entry, which is never freed while published.
        if let Some(entry) = unsafe { entry.as_ref() } {
            if entry.owner == me {
                let _ = remove::unlink_held(&entry.path, entry.id);
            }
        }
    }
}

extern "C" fn remove_at_exit() {
    remove_all_registered();
}

fn install_exit_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        sys::at_exit(remove_at_exit);
    }
}

/// The signals after which a pidfile is removed.
pub(crate) const SIGNALS: [i32; 2] = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM];

/// Installs the SIGINT and SIGTERM handlers, once per process. A signal the process was started ignoring (as a
/// shell starts background jobs ignoring SIGINT) stays ignored.
pub(crate) fn install_signal_handlers(path: &Path) -> Result<(), Error> {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if *installed {
        return Ok(());
    }
    for signal in SIGNALS {
        if sys::signal_is_ignored(signal) {
            continue;
        }
        // SAFETY: the action is async-signal-safe: `remove_all_registered` only swaps atomics and makes system
        // calls on memory allocated beforehand, and `emulate_default_handler` restores the default action and
        // raises the signal with async-signal-safe calls.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                remove_all_registered();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
            })
        };
        registered.map_err(|error| Error::io("install the SIGINT/SIGTERM handlers that remove", path, error))?;
    }
    *installed = true;
    Ok(())
}
