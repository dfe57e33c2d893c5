//! Test helpers of penin, so that a test cannot pass without making its check.
//!
//! * [`skip`]: a test that cannot make its real check here (no `python3`, no `mkfifo`, no
//!   tmpfs to fill, one CPU so no second thread) says so instead of returning quietly. The
//!   skip is written to stderr (past the test harness's capture, so it shows even when the
//!   test passes) and appended to the file named by `PENIN_SKIP_LOG`, and under CI
//!   (`CI=true`) it fails the test unless `PENIN_ALLOW_SKIP` (test names separated by commas)
//!   names the test. `.ci/run` sets `PENIN_SKIP_LOG` to a fresh file and prints every skip of
//!   the run at the end.
//! * [`rerun_unprivileged`]: a test of file permissions running as root (as CI does), where
//!   every file is readable, runs again as `nobody` in a child process instead of skipping.
//! * [`AsNobody`]: runs a program (the `penin` binary, say) as `nobody`; and
//!   [`permissions_are_enforced`] tells whether this process is held to file permissions.
//!
//! # Example
//!
//! ```
//! use std::process::Command;
//!
//! /// A check against Python that cannot be made without it: skipped, and said so.
//! fn python_agrees() {
//!     let python = Command::new("python3").arg("-c").arg("print(0.1 + 0.2)").output();
//!     let Ok(output) = python else {
//!         penin_testkit::skip("python_agrees", "python3 is not on PATH");
//!         return;
//!     };
//!     assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), (0.1 + 0.2).to_string());
//! }
//! python_agrees();
//!
//! // Root reads any file: a check that a file of mode 0000 cannot be read runs as nobody.
//! if !penin_testkit::permissions_are_enforced() {
//!     let id = penin_testkit::AsNobody::new("/usr/bin/id")?;
//!     let output = id.command().arg("-u").output()?;
//!     assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "65534");
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

pub use crate::nobody::{AsNobody, NOBODY, permissions_are_enforced, rerun_unprivileged};
pub use crate::rng::Xorshift;
pub use crate::skip::{program, python_package_missing, python3, skip};

mod nobody;
mod rng;
mod skip;
