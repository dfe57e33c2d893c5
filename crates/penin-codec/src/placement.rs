//! Where a helper thread starts: on another core than the thread that starts it.
//!
//! penin splits a load or a save between the calling thread and helpers it starts for that
//! call: the second half of a JSON document, the checksum of a snapshot, the rows of a
//! knowledge base, the encryption of a file. A helper is worth starting only if it runs at
//! the same time as the thread that started it.
//!
//! A scheduler does not always start it so. On some virtual machines a new thread is queued
//! on its creator's core while another core idles, and the kernel moves it only after
//! milliseconds. On the 2-core virtual machine penin is measured on, a helper started by a
//! thread that then worked for 4 ms began 1 ms or more after the spawn in 158 of 200 rounds,
//! 2.4 ms after it at the median (`examples/spawn_latency.rs`; docs/benchmarks.md, "Helpers
//! on another core"). A load of a 10,000 × 384 snapshot takes 3 to 4 ms: a helper that
//! late does nothing for it.
//!
//! So a helper started here moves off its creator's core as soon as it runs:
//! - The creator reads its core just before the spawn, and yields once after it, so that a
//!   helper queued on its core runs at once rather than when the creator next waits.
//! - The helper's first act takes that core out of its CPU affinity mask: the kernel moves
//!   it to another core before the call returns. It then puts its mask back as it was, and
//!   from then on the kernel places it as it would any thread.
//!
//! With this, two runs of the same 200 rounds started every helper within 0.17 and 0.94 ms,
//! 0.075 and 0.062 ms at the median.
//!
//! Nothing else changes:
//! - Where the creator may run on one core only, or the mask cannot be read or set (a
//!   seccomp filter, a system that is not Linux), the helper stays where the kernel put it.
//! - The creator's own mask is never touched.
//!
//! Only helpers that work while their creator works should start here. A thread whose
//! creator mostly waits for it (penin's gzip members) gains nothing from its creator's core
//! being left to the creator.

#[cfg(any(test, feature = "testing"))]
use std::cell::Cell;
use std::io;
use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// [`Builder::spawn`], with the new thread moved off the calling thread's core as it starts,
/// for a helper that works while the calling thread works.
///
/// Some schedulers queue a new thread on its creator's core for milliseconds while another
/// core idles (on the 2-core virtual machine penin is measured on, a helper started by a
/// thread that then worked for 4 ms began 2.4 ms after the spawn at the median). So the
/// calling thread yields once after the spawn, and the helper's first act takes the calling
/// thread's core out of its CPU affinity mask, which makes the kernel move it, then puts the
/// mask back. Where the calling thread may run on one core only, or the mask cannot be read
/// or set (a system that is not Linux), the helper stays where the kernel put it. The
/// calling thread's mask is never touched.
///
/// # Errors
///
/// The error [`Builder::spawn`] gives when the system refuses a thread (and, with the
/// `testing` feature, within `refusing_helpers`, an error of kind
/// [`io::ErrorKind::WouldBlock`]).
///
/// # Examples
///
/// ```
/// let helper = penin_codec::spawn_beside(std::thread::Builder::new(), || 6 * 7)?;
/// assert_eq!(helper.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_beside<F, T>(builder: Builder, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(any(test, feature = "testing"))]
    refused()?;
    let handle = builder.spawn(off_this_core(f))?;
    std::thread::yield_now();
    Ok(handle)
}

/// [`Builder::spawn_scoped`], with the new thread moved off the calling thread's core as it
/// starts, as [`spawn_beside`] does.
///
/// # Errors
///
/// The error [`Builder::spawn_scoped`] gives when the system refuses a thread (and, with the
/// `testing` feature, within `refusing_helpers`, an error of kind
/// [`io::ErrorKind::WouldBlock`]).
///
/// # Examples
///
/// ```
/// let numbers = [1, 2, 3, 4];
/// let sum = std::thread::scope(|scope| {
///     let builder = std::thread::Builder::new();
///     let second = penin_codec::spawn_scoped_beside(builder, scope, || {
///         numbers[2..].iter().sum::<i32>()
///     })?;
///     let first: i32 = numbers[..2].iter().sum();
///     Ok::<_, std::io::Error>(first + second.join().unwrap())
/// })?;
/// assert_eq!(sum, 10);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn spawn_scoped_beside<'scope, 'env, F, T>(
    builder: Builder,
    scope: &'scope Scope<'scope, 'env>,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    #[cfg(any(test, feature = "testing"))]
    refused()?;
    let handle = builder.spawn_scoped(scope, off_this_core(f))?;
    std::thread::yield_now();
    Ok(handle)
}

/// `f`, for a new thread to run: it first leaves the core the calling thread runs on now.
fn off_this_core<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let core = Core::current();
    move || {
        core.leave();
        f()
    }
}

#[cfg(any(test, feature = "testing"))]
thread_local! {
    static REFUSING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every [`spawn_beside`] and [`spawn_scoped_beside`] called by this thread
/// refused, as a system out of threads refuses them: for the tests of what a caller does
/// then. Other threads' spawns are not affected. Only with the `testing` feature.
///
/// # Examples
///
/// ```
/// let refused = penin_codec::refusing_helpers(|| {
///     penin_codec::spawn_beside(std::thread::Builder::new(), || ()).is_err()
/// });
/// assert!(refused);
/// ```
#[cfg(any(test, feature = "testing"))]
pub fn refusing_helpers<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REFUSING.set(self.0);
        }
    }
    let _restore = Restore(REFUSING.replace(true));
    f()
}

/// An error while [`refusing_helpers`] runs.
#[cfg(any(test, feature = "testing"))]
fn refused() -> io::Result<()> {
    if REFUSING.get() {
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "no helper thread (refused for a test)",
        ));
    }
    Ok(())
}

/// The core a thread ran on when it was read, if it could be read.
#[derive(Clone, Copy, Debug)]
struct Core(Option<usize>);

impl Core {
    fn current() -> Core {
        #[cfg(target_os = "linux")]
        return Core(nix::sched::sched_getcpu().ok());
        #[cfg(not(target_os = "linux"))]
        return Core(None);
    }

    /// Moves the calling thread off this core, if it may run on another: its CPU affinity
    /// mask without the core, then the mask it had. Where the mask cannot be read or set,
    /// or would be left empty, nothing changes.
    fn leave(self) {
        #[cfg(target_os = "linux")]
        if let Some(core) = self.0 {
            use nix::sched::{sched_getaffinity, sched_setaffinity};
            use nix::unistd::Pid;
            // Pid 0: the calling thread, not the process.
            let this_thread = Pid::from_raw(0);
            let Ok(allowed) = sched_getaffinity(this_thread) else {
                return;
            };
            let mut elsewhere = allowed;
            if elsewhere.unset(core).is_err() {
                return;
            }
            // The kernel moves the thread before returning, or refuses a mask that leaves
            // it no core to run on (an empty one, or one its cpuset allows none of). Putting
            // back a mask the thread had cannot be refused but by a cpuset changed meanwhile;
            // the helper then keeps the narrower mask, which costs it one core at most.
            if sched_setaffinity(this_thread, &elsewhere).is_ok() {
                let _ = sched_setaffinity(this_thread, &allowed);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.0;
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use nix::sched::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    use nix::unistd::Pid;

    fn mask(cores: &[usize]) -> CpuSet {
        let mut mask = CpuSet::new();
        for &core in cores {
            mask.set(core).unwrap();
        }
        mask
    }

    fn cores_of_this_thread() -> Vec<usize> {
        let mask = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..CpuSet::count())
            .filter(|&cpu| mask.is_set(cpu).unwrap())
            .collect()
    }

    /// Two cores this thread may run on, if it may run on two; if not, the test named
    /// `test` says it checks nothing here (and fails under CI, where it must check).
    fn two_cores(test: &str) -> Option<[usize; 2]> {
        let cores = cores_of_this_thread();
        if let [first, second, ..] = cores[..] {
            return Some([first, second]);
        }
        penin_testkit::skip(test, &format!("this thread may run on {cores:?} only"));
        None
    }

    /// Runs `f` on a new thread of its own that runs on `on` and may run on `may`.
    fn on_core<T: Send>(on: usize, may: &[usize], f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // Bound to the one core, it is moved there; widened, it stays there until
                    // the kernel moves it, which it has no reason to do within a test.
                    sched_setaffinity(Pid::from_raw(0), &mask(&[on])).unwrap();
                    sched_setaffinity(Pid::from_raw(0), &mask(may)).unwrap();
                    f()
                })
                .join()
                .unwrap()
        })
    }

    #[test]
    fn leaving_a_core_moves_the_thread_and_keeps_its_mask() {
        let Some([a, b]) = two_cores("leaving_a_core_moves_the_thread_and_keeps_its_mask") else {
            return;
        };
        for (from, to) in [(a, b), (b, a)] {
            let mut checked = 0;
            for _ in 0..5 {
                let (before, after, cores) = on_core(from, &[a, b], || {
                    let before = sched_getcpu().unwrap();
                    Core(Some(from)).leave();
                    (before, sched_getcpu().unwrap(), cores_of_this_thread())
                });
                assert_eq!(cores, [a, b], "the mask after leaving");
                if before != from {
                    // The kernel moved the thread once its mask was widened: nothing to leave.
                    continue;
                }
                assert_eq!(after, to, "the core after leaving {from}");
                checked += 1;
            }
            assert!(
                checked >= 2,
                "the thread was moved before leaving in {} of 5",
                5 - checked
            );
        }
    }

    #[test]
    fn a_thread_that_may_run_on_one_core_stays_there() {
        let Some([a, _]) = two_cores("a_thread_that_may_run_on_one_core_stays_there") else {
            return;
        };
        let only = on_core(a, &[a], || {
            Core(Some(a)).leave();
            (sched_getcpu().unwrap(), cores_of_this_thread())
        });
        assert_eq!(only, (a, vec![a]), "a thread that may run on one core only");
    }

    /// What a helper saw when it first ran, started beside a creator on core `on` that may run
    /// on `may`: the creator's core before and after the spawn, the helper's core and mask,
    /// and the creator's mask after the helper ended.
    fn start_a_helper(
        on: usize,
        may: &[usize],
        scoped: bool,
    ) -> ([usize; 2], usize, Vec<usize>, Vec<usize>) {
        on_core(on, may, || {
            let helper = || (sched_getcpu().unwrap(), cores_of_this_thread());
            let before = sched_getcpu().unwrap();
            let (seen, after) = if scoped {
                std::thread::scope(|scope| {
                    let handle = spawn_scoped_beside(Builder::new(), scope, helper).unwrap();
                    let after = sched_getcpu().unwrap();
                    (handle.join().unwrap(), after)
                })
            } else {
                let handle = spawn_beside(Builder::new(), helper).unwrap();
                let after = sched_getcpu().unwrap();
                (handle.join().unwrap(), after)
            };
            ([before, after], seen.0, seen.1, cores_of_this_thread())
        })
    }

    #[test]
    fn a_helper_starts_off_its_creators_core_and_the_creators_mask_stays() {
        let Some([a, b]) =
            two_cores("a_helper_starts_off_its_creators_core_and_the_creators_mask_stays")
        else {
            return;
        };
        for scoped in [false, true] {
            let mut checked = 0;
            for on in [a, b, a, b] {
                let (creator, helper, helper_mask, creator_mask) =
                    start_a_helper(on, &[a, b], scoped);
                if creator != [on, on] {
                    // The kernel moved the creator around the spawn: no telling which core
                    // the helper left.
                    continue;
                }
                // On a kernel that starts a new thread on an idle core anyway this holds
                // without `leave` too; on one that queues it on its creator's core (the
                // machine this is measured on) it does not. `leave` itself is checked above.
                assert_ne!(
                    helper, on,
                    "a helper (scoped: {scoped}) ran on its creator's core"
                );
                assert_eq!(helper_mask, [a, b], "the helper's mask, put back");
                assert_eq!(creator_mask, [a, b], "the creator's mask");
                checked += 1;
            }
            // A creator that moves in every round is no creator the kernel left alone.
            assert!(
                checked >= 2,
                "the creator moved around {} of 4 spawns",
                4 - checked
            );
            let (_, helper, helper_mask, creator_mask) = start_a_helper(a, &[a], scoped);
            assert_eq!(
                (helper, helper_mask, creator_mask),
                (a, vec![a], vec![a]),
                "a helper whose creator may run on one core only"
            );
        }
    }

    #[test]
    fn refused_helpers_are_refused_on_this_thread_only() {
        let refused = refusing_helpers(|| {
            let plain = spawn_beside(Builder::new(), || ()).map(|_| ());
            let scoped = std::thread::scope(|scope| {
                spawn_scoped_beside(Builder::new(), scope, || ()).map(|_| ())
            });
            let elsewhere = std::thread::spawn(|| {
                spawn_beside(Builder::new(), || 1)?
                    .join()
                    .map_err(|_| io::Error::other("panicked"))
            })
            .join()
            .unwrap();
            (
                plain.unwrap_err().kind(),
                scoped.unwrap_err().kind(),
                elsewhere.unwrap(),
            )
        });
        assert_eq!(
            refused,
            (io::ErrorKind::WouldBlock, io::ErrorKind::WouldBlock, 1)
        );
        assert_eq!(
            spawn_beside(Builder::new(), || 2).unwrap().join().unwrap(),
            2,
            "after"
        );
    }
}
