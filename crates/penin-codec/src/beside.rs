//! Threads that work beside the thread that starts them, on another core.
//!
//! penin splits a load or a save between the calling thread and helpers it starts for that
//! one call: the second half of a JSON document, the checksum of a snapshot, the rows of a
//! knowledge base, the encryption of a file. A helper is worth starting only if it runs at
//! the same time as the thread that started it.
//!
//! A scheduler does not always place it so. On some virtual machines a new thread is put on
//! its creator's core and stays queued there while another core idles; the kernel moves it
//! only after milliseconds. On the 2-core virtual machine this project is measured on, a thread
//! that spins for 4 ms after starting one started it late in 25 of 40 runs, 2.9 to 4.1 ms
//! after the spawn (docs/benchmarks.md, "Helpers on another core"). A load of 10,000 × 384 from
//! a snapshot takes about 4 ms: a helper that late does nothing for it.
//!
//! So a helper started here is kept off its creator's core. The creator reads its core
//! just before the spawn; the helper, first thing, takes that core out of its CPU affinity
//! mask, which moves it at once if it was queued there, and keeps the core out for its
//! life (a helper's life is the one call that started it). The creator yields once after
//! the spawn, so that a helper queued on its core runs and leaves at once, not when the
//! creator next waits.
//!
//! The rest is left to the kernel:
//! - A helper whose mask would be left empty, because its creator may only run on one core,
//!   keeps its mask as it is.
//! - Where the mask cannot be read or set (a seccomp filter, a system that is not Linux),
//!   the helper keeps it too.
//! - The creator's own mask is never touched.

use std::io;
use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// [`Builder::spawn`], with the new thread kept off the calling thread's core (see the
/// [module docs](self)).
///
/// # Errors
///
/// The error [`Builder::spawn`] gives when the system refuses a thread.
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
    let core = Core::current();
    let handle = builder.spawn(move || {
        core.leave();
        f()
    })?;
    std::thread::yield_now();
    Ok(handle)
}

/// [`Builder::spawn_scoped`], with the new thread kept off the calling thread's core (see
/// the [module docs](self)).
///
/// # Errors
///
/// The error [`Builder::spawn_scoped`] gives when the system refuses a thread.
///
/// # Examples
///
/// ```
/// let halves = [1, 2, 3, 4];
/// let sum = std::thread::scope(|scope| {
///     let second = penin_codec::spawn_scoped_beside(std::thread::Builder::new(), scope, || {
///         halves[2..].iter().sum::<i32>()
///     })?;
///     let first: i32 = halves[..2].iter().sum();
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
    let core = Core::current();
    let handle = builder.spawn_scoped(scope, move || {
        core.leave();
        f()
    })?;
    std::thread::yield_now();
    Ok(handle)
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

    /// Takes this core out of the calling thread's CPU affinity mask, unless that would
    /// leave the mask empty or the mask cannot be read or set (then it stays as it was).
    fn leave(self) {
        #[cfg(target_os = "linux")]
        if let Some(core) = self.0 {
            use nix::sched::{sched_getaffinity, sched_setaffinity};
            use nix::unistd::Pid;
            let this_thread = Pid::from_raw(0);
            let Ok(mut mask) = sched_getaffinity(this_thread) else {
                return;
            };
            if mask.unset(core).is_err() {
                return;
            }
            // The kernel refuses a mask that leaves the thread no core it may run on (an
            // empty one, or one of cores its cpuset denies): the mask stays as it was.
            let _ = sched_setaffinity(this_thread, &mask);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use nix::sched::{CpuSet, sched_getaffinity, sched_getcpu, sched_setaffinity};
    use nix::unistd::Pid;

    fn cores_of_this_thread() -> Vec<usize> {
        let mask = sched_getaffinity(Pid::from_raw(0)).unwrap();
        (0..CpuSet::count())
            .filter(|&cpu| mask.is_set(cpu).unwrap())
            .collect()
    }

    /// What a helper saw, started by a thread of its own (whose mask a test may change):
    /// the creator's core just before and just after the spawn (the kernel may move it
    /// between the two), the helper's mask and the core it ran on, and the creator's mask
    /// after the helper ended.
    #[derive(Debug)]
    struct Seen {
        creator: [usize; 2],
        helper_mask: Vec<usize>,
        helper_ran_on: usize,
        creator_mask: Vec<usize>,
    }

    fn start_a_helper(scoped: bool) -> Seen {
        std::thread::scope(|outer| {
            outer
                .spawn(move || {
                    let helper = || (cores_of_this_thread(), sched_getcpu().unwrap());
                    let before = sched_getcpu().unwrap();
                    let ((helper_mask, helper_ran_on), after) = if scoped {
                        std::thread::scope(|scope| {
                            let handle = spawn_scoped_beside(Builder::new(), scope, helper);
                            let after = sched_getcpu().unwrap();
                            (handle.unwrap().join().unwrap(), after)
                        })
                    } else {
                        let handle = spawn_beside(Builder::new(), helper);
                        let after = sched_getcpu().unwrap();
                        (handle.unwrap().join().unwrap(), after)
                    };
                    Seen {
                        creator: [before, after],
                        helper_mask,
                        helper_ran_on,
                        creator_mask: cores_of_this_thread(),
                    }
                })
                .join()
                .unwrap()
        })
    }

    /// The cores this thread may run on, if two or more. Where there are fewer, says so
    /// and gives none (the tests then check nothing), or fails under `CI=true`, where the
    /// check must run.
    fn two_cores() -> Option<Vec<usize>> {
        let cores = cores_of_this_thread();
        if cores.len() >= 2 {
            return Some(cores);
        }
        let why = format!("this thread may run on {cores:?} only: no second core to check");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIPPED: {why}");
        None
    }

    #[test]
    fn a_helper_is_kept_off_its_creators_core_and_only_that_one() {
        let Some(all) = two_cores() else { return };
        for scoped in [false, true] {
            for _ in 0..20 {
                let seen = start_a_helper(scoped);
                let missing: Vec<usize> = all
                    .iter()
                    .copied()
                    .filter(|cpu| !seen.helper_mask.contains(cpu))
                    .collect();
                assert!(
                    missing.len() == 1 && seen.creator.contains(&missing[0]),
                    "the helper's mask lacks {missing:?}, not the creator's core: {seen:?}"
                );
                assert!(
                    seen.helper_mask.iter().all(|cpu| all.contains(cpu)),
                    "{seen:?}"
                );
                assert_ne!(seen.helper_ran_on, missing[0], "{seen:?}");
                assert_eq!(seen.creator_mask, all, "the creator's own mask changed");
            }
        }
    }

    #[test]
    fn a_helper_of_a_creator_bound_to_one_core_runs_on_that_core() {
        let Some(all) = two_cores() else { return };
        let only = all[all.len() - 1];
        for scoped in [false, true] {
            let seen = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        let mut one = CpuSet::new();
                        one.set(only).unwrap();
                        sched_setaffinity(Pid::from_raw(0), &one).unwrap();
                        start_a_helper(scoped)
                    })
                    .join()
                    .unwrap()
            });
            assert_eq!(seen.creator, [only, only], "{seen:?}");
            assert_eq!(seen.helper_mask, [only], "{seen:?}");
            assert_eq!(seen.helper_ran_on, only, "{seen:?}");
            assert_eq!(seen.creator_mask, [only], "{seen:?}");
        }
    }

    #[test]
    fn an_unknown_core_leaves_the_mask_as_it_was() {
        let Some(all) = two_cores() else { return };
        let mask = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    Core(None).leave();
                    cores_of_this_thread()
                })
                .join()
                .unwrap()
        });
        assert_eq!(mask, all);
    }
}
