//! Timer kicks: making `KVM_RUN` return by a deadline even if the guest
//! spins without ever exiting.
//!
//! A guest loop like `jmp $` never leaves KVM on its own, but the machine
//! must regain control when a device timer is due. The classic answer
//! (QEMU, Firecracker, cloud-hypervisor) is a signal: a signal that is
//! delivered to a thread inside `KVM_RUN` makes the ioctl return `EINTR`.
//!
//! # Design
//!
//! * One process-wide no-op handler for a real-time signal
//!   ([`kick_signal`], `SIGRTMIN`) is installed once. No signal is blocked;
//!   the handler only exists so the signal interrupts the ioctl instead of
//!   killing the process.
//! * One kicker thread per vCPU, spawned lazily on the first deadline,
//!   sleeps on a condition variable until the armed deadline (no busy
//!   loop). At the deadline it sets `kvm_run.immediate_exit = 1`, then
//!   sends the signal to the vCPU thread.
//! * `run()` arms the kicker with its deadline and the calling thread
//!   ([`Kicker::arm`]); the returned [`ArmGuard`] disarms when `run()`
//!   returns, by any path.
//!
//! # Why this is race-free enough
//!
//! The signal alone has a window: if it lands while the vCPU thread is in
//! userspace handling an exit, the no-op handler eats it and the next
//! `KVM_RUN` could spin forever. `immediate_exit` closes that window: KVM
//! reads it at the start of every `KVM_RUN` (after completing any pending
//! I/O) and returns `EINTR` at once if it is set. So a kick is never lost:
//! either the signal interrupts a running `KVM_RUN`, or the flag stops the
//! next one. The vCPU thread never clears the flag while armed.
//!
//! Firing and disarming both happen under the kicker's mutex, so once
//! [`ArmGuard`] has dropped, the kicker will not touch this slice again;
//! the guard then clears `immediate_exit`. What can remain is a signal
//! sent just before the disarm and still pending on the thread: it either
//! runs the no-op handler in userspace (harmless) or interrupts the first
//! `KVM_RUN` of the next slice, which then ends early with `SliceEnd`; the
//! machine polls its devices and calls `run()` again. A stale kick can
//! only shorten one later slice, never break it or be lost.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

/// The signal used to kick a vCPU thread out of `KVM_RUN`.
pub fn kick_signal() -> libc::c_int {
    vmm_sys_util::signal::SIGRTMIN()
}

extern "C" fn kick_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: being delivered is the point (KVM_RUN returns EINTR).
}

/// Install the no-op handler, once per process.
fn install_handler() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            vmm_sys_util::signal::register_signal_handler(kick_signal(), kick_handler)
                .map_err(|e| format!("cannot install the vCPU kick signal handler: {e}"))
        })
        .clone()
}

/// `kvm_run.immediate_exit` of one vCPU, as shared memory.
#[derive(Clone, Copy)]
struct ImmediateExit(*const AtomicU8);

// SAFETY: the pointer targets the vCPU's `kvm_run` mapping, which lives
// until the `VcpuFd` is dropped. The kicker thread dereferences it only
// while an arm is in place, and arms exist only during `KvmAccel::run`,
// which borrows the vCPU (so it cannot be dropped meanwhile); disarming
// takes the same mutex as firing. All our accesses are atomic.
unsafe impl Send for ImmediateExit {}

struct Arm {
    deadline: Instant,
    target: libc::pthread_t,
    flag: ImmediateExit,
}

#[derive(Default)]
struct KickState {
    armed: Option<Arm>,
    shutdown: bool,
    /// Kicks actually sent (for tests and stats).
    fired: u64,
}

#[derive(Default)]
struct Shared {
    state: Mutex<KickState>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, KickState> {
        // A panic while holding this lock can only come from a bug in this
        // file; the state stays consistent (plain fields), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The kicker of one vCPU.
#[derive(Default)]
pub struct Kicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Disarms the kicker when dropped.
pub struct ArmGuard<'a> {
    kicker: Option<&'a Kicker>,
    flag: *const AtomicU8,
}

impl Drop for ArmGuard<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.kicker {
            k.shared.lock().armed = None;
            k.shared.wake.notify_one();
        }
        // Also when nothing was armed: `run()` itself sets the flag to
        // complete a stopped I/O, and the next slice must start clear.
        // SAFETY: the flag points into the vCPU's kvm_run mapping, alive
        // for the whole `run()` this guard lives in (see ImmediateExit).
        unsafe { &*self.flag }.store(0, Ordering::SeqCst);
    }
}

impl Kicker {
    /// Arm a kick at `deadline` for the calling thread. `immediate_exit`
    /// is the vCPU's `kvm_run.immediate_exit` byte; it must stay valid
    /// until the guard drops. With no deadline nothing is armed.
    pub fn arm(
        &mut self,
        deadline: Option<Instant>,
        immediate_exit: *mut u8,
    ) -> Result<ArmGuard<'_>, String> {
        let Some(deadline) = deadline else {
            return Ok(ArmGuard {
                kicker: None,
                flag: immediate_exit as *const AtomicU8,
            });
        };
        install_handler()?;
        if self.thread.is_none() {
            let shared = self.shared.clone();
            let t = std::thread::Builder::new()
                .name("ringside-kvm-kick".into())
                .spawn(move || kicker_thread(&shared))
                .map_err(|e| format!("cannot start the vCPU kick thread: {e}"))?;
            self.thread = Some(t);
        }
        let flag = immediate_exit as *const AtomicU8;
        {
            let mut st = self.shared.lock();
            st.armed = Some(Arm {
                deadline,
                // SAFETY: pthread_self has no preconditions.
                target: unsafe { libc::pthread_self() },
                flag: ImmediateExit(flag),
            });
        }
        self.shared.wake.notify_one();
        Ok(ArmGuard {
            kicker: Some(self),
            flag,
        })
    }

    /// Number of kicks sent so far.
    #[cfg(test)]
    pub fn fired(&self) -> u64 {
        self.shared.lock().fired
    }
}

fn kicker_thread(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        let Some(arm) = st.armed.as_ref() else {
            st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let now = Instant::now();
        if now < arm.deadline {
            let wait = arm.deadline - now;
            st = shared
                .wake
                .wait_timeout(st, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            continue;
        }
        // Fire, under the lock so that a concurrent disarm either happens
        // before (and we see `armed == None`) or after (and the vCPU clears
        // the flag once it has disarmed).
        // SAFETY: see `ImmediateExit`: armed ⇒ the mapping is alive.
        unsafe { &*arm.flag.0 }.store(1, Ordering::SeqCst);
        // SAFETY: `target` is the thread that armed us, which is inside
        // `run()` until it disarms under this lock, so the thread exists.
        // The signal has a no-op handler, so delivery cannot hurt it.
        unsafe { libc::pthread_kill(arm.target, kick_signal()) };
        st.armed = None;
        st.fired += 1;
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shared.lock().shutdown = true;
            self.shared.wake.notify_one();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kick_sets_flag_and_interrupts_a_blocking_call() {
        let mut k = Kicker::default();
        let mut flag = 0u8;
        let start = Instant::now();
        {
            let _g = k
                .arm(Some(start + Duration::from_millis(30)), &mut flag)
                .unwrap();
            // A blocking syscall standing in for KVM_RUN: the kick must
            // end it early with EINTR (no SA_RESTART on our handler).
            let mut ts = libc::timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            // SAFETY: valid timespec pointers.
            let r = unsafe { libc::nanosleep(&ts, &mut ts) };
            assert_eq!(r, -1);
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EINTR)
            );
            // SAFETY: same byte the kicker writes atomically.
            assert_eq!(
                unsafe { &*(&flag as *const u8 as *const AtomicU8) }.load(Ordering::SeqCst),
                1
            );
        }
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(flag, 0, "disarming clears immediate_exit");
        assert_eq!(k.fired(), 1);
    }

    #[test]
    fn disarmed_kick_never_fires() {
        let mut k = Kicker::default();
        let mut flag = 0u8;
        {
            let _g = k
                .arm(Some(Instant::now() + Duration::from_millis(20)), &mut flag)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(k.fired(), 0);
        assert_eq!(flag, 0);
        // And the kicker still works for the next slice.
        {
            let _g = k
                .arm(Some(Instant::now() + Duration::from_millis(5)), &mut flag)
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(k.fired(), 1);
    }
}
