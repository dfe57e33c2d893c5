//! Retention: the restore points a rule keeps, and the objects only the others need.
//!
//! A prune reads every manifest, keeps the latest, the last `N` and those written within a
//! duration of the latest, and deletes the others' manifests first, then the data objects
//! (`snapshots/`, `journal/`, `ledger/`) that no kept manifest names. Every object a kept
//! manifest names stays, so a kept restore point stays restorable, its journal segments
//! from the first.
//!
//! Two guards make it safe beside a push and a restore:
//!
//! * an object younger than the *grace* period (by the server's last-modified time) is
//!   never deleted, so the objects a push uploaded before writing its manifest survive a
//!   prune that listed the manifests first;
//! * a restore that picked a manifest a prune then deleted finds an object missing and the
//!   manifest gone: it picks again ([`crate::restore`]), and the latest manifest, which is
//!   always kept, restores whole.

use std::collections::BTreeSet;
use std::time::Duration;

use penin_history::time::Timestamp;

use crate::error::Result;
use crate::manifest::{self, Manifest};
use crate::remote::Remote;

/// The default grace period: objects younger than this are never deleted.
pub const GRACE: Duration = Duration::from_secs(3600);

/// What a prune keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Keep the last `keep_last` manifests (the latest is kept whatever this is).
    pub keep_last: u64,
    /// Keep the manifests written within this of the latest one.
    pub keep_within: Option<Duration>,
    /// Never delete an object younger than this.
    pub grace: Duration,
}

impl Retention {
    /// Keeps the latest manifest only, with the default grace period.
    pub fn new() -> Retention {
        Retention {
            keep_last: 1,
            keep_within: None,
            grace: GRACE,
        }
    }

    /// Keeps the last `n` manifests too.
    #[must_use]
    pub fn keep_last(mut self, n: u64) -> Retention {
        self.keep_last = n;
        self
    }

    /// Keeps the manifests written within `within` of the latest too.
    #[must_use]
    pub fn keep_within(mut self, within: Duration) -> Retention {
        self.keep_within = Some(within);
        self
    }

    /// Deletes no object younger than `grace`.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Retention {
        self.grace = grace;
        self
    }
}

impl Default for Retention {
    fn default() -> Retention {
        Retention::new()
    }
}

/// What a prune deleted (or, in a dry run, would delete).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pruned {
    /// The manifests kept, oldest first.
    pub kept: Vec<Manifest>,
    /// The numbers of the manifests deleted, oldest first.
    pub manifests: Vec<u64>,
    /// The objects deleted (names relative to the prefix) and their sizes.
    pub objects: Vec<(String, u64)>,
    /// Objects no kept manifest names, left because they are younger than the grace period.
    pub young: usize,
    /// Whether nothing was deleted (a dry run).
    pub dry_run: bool,
}

/// Which of `manifests` (oldest first) `retention` keeps: the latest, the last
/// `keep_last`, those written within `keep_within` of the latest.
fn kept(manifests: &[Manifest], retention: &Retention) -> Vec<bool> {
    let count = manifests.len();
    let last = usize::try_from(retention.keep_last.max(1)).unwrap_or(usize::MAX);
    let newest = manifests
        .last()
        .and_then(|m| Timestamp::parse(&m.time).ok());
    let since = match (newest, retention.keep_within) {
        (Some(newest), Some(within)) => Some(newest.checked_sub(within).unwrap_or(Timestamp::MIN)),
        _ => None,
    };
    manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let recent = count - i <= last;
            // A manifest whose time does not parse is kept: a rule cannot judge it.
            let within = since
                .is_some_and(|since| Timestamp::parse(&m.time).map_or(true, |time| time >= since));
            recent || within
        })
        .collect()
}

/// Deletes the manifests `retention` does not keep, then the data objects no kept manifest
/// names and older than the grace period; `dry_run` deletes nothing and says what would go.
/// `now` is the time the grace period counts back from.
pub fn prune(
    remote: &Remote,
    retention: &Retention,
    now: Timestamp,
    dry_run: bool,
) -> Result<Pruned> {
    let manifests = remote.manifests()?;
    let keep = kept(&manifests, retention);
    let mut kept_manifests = Vec::new();
    let mut gone = Vec::new();
    for (manifest, keep) in manifests.into_iter().zip(keep) {
        if keep {
            kept_manifests.push(manifest);
        } else {
            gone.push(manifest.number);
        }
    }
    let named: BTreeSet<&str> = kept_manifests
        .iter()
        .flat_map(Manifest::objects)
        .map(|o| o.key.as_str())
        .collect();
    // Listed after the manifests were read: an object a later push uploaded is younger than
    // the grace period, and one a later manifest names from before was named by the latest.
    let young_since = now.checked_sub(retention.grace).unwrap_or(Timestamp::MIN);
    let mut objects = Vec::new();
    let mut young = 0;
    for (name, size, modified) in remote.listing()? {
        let data = ["snapshots/", "journal/", "ledger/"]
            .iter()
            .any(|dir| name.starts_with(dir));
        if !data || named.contains(name.as_str()) {
            continue;
        }
        if modified > young_since {
            young += 1;
            continue;
        }
        objects.push((name, size));
    }
    if !dry_run {
        // Manifests first: a restore that finds an object missing then finds its manifest
        // gone, and picks again.
        for &number in &gone {
            remote.delete(&manifest::name(number))?;
        }
        for (name, _) in &objects {
            remote.delete(name)?;
        }
    }
    Ok(Pruned {
        kept: kept_manifests,
        manifests: gone,
        objects,
        young,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(number: u64, time: &str) -> Manifest {
        Manifest {
            version: manifest::VERSION,
            number,
            epoch: 1,
            time: time.to_owned(),
            seq: number,
            ledger_seq: 0,
            ledger_head: "0".repeat(64),
            snapshot: None,
            journal: Vec::new(),
            ledger: Vec::new(),
            sealed: false,
        }
    }

    #[test]
    fn rules() {
        let manifests = [
            at(1, "2026-11-01T00:00:00Z"),
            at(2, "2026-11-20T00:00:00Z"),
            at(3, "2026-11-28T00:00:00Z"),
            at(4, "2026-11-29T00:00:00Z"),
            at(5, "2026-11-29T12:00:00Z"),
        ];
        let day = Duration::from_secs(86_400);
        let rows = [
            (Retention::new(), vec![false, false, false, false, true]),
            (
                Retention::new().keep_last(0),
                vec![false, false, false, false, true],
            ),
            (
                Retention::new().keep_last(2),
                vec![false, false, false, true, true],
            ),
            (Retention::new().keep_last(9), vec![true; 5]),
            (
                Retention::new().keep_within(day),
                vec![false, false, false, true, true],
            ),
            (
                Retention::new().keep_within(2 * day),
                vec![false, false, true, true, true],
            ),
            (
                Retention::new().keep_last(1).keep_within(10 * day),
                vec![false, true, true, true, true],
            ),
        ];
        for (retention, expected) in rows {
            assert_eq!(kept(&manifests, &retention), expected, "{retention:?}");
        }
        assert!(kept(&[], &Retention::new()).is_empty());
    }
}
