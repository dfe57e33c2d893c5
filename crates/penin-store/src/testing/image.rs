//! The durable images of a [`CrashFs`]'s model: their enumeration, and [`Image`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::crash::CrashFs;
use super::model::{Change, Cut, DirOp, FileData, Model, NodeId, ROOT};

impl FileData {
    /// The prefixes of the unsynced changes an image may keep, in order, with no two alike.
    fn cuts(&self) -> Vec<Cut> {
        let mut cuts = vec![Cut::NONE];
        for (whole, change) in self.unsynced.iter().enumerate() {
            if matches!(change, Change::Write { bytes, .. } if bytes.len() >= 2) {
                cuts.push(Cut { whole, half: true });
            }
            cuts.push(Cut {
                whole: whole + 1,
                half: false,
            });
        }
        if cuts.len() > CrashFs::MAX_CUTS {
            // Evenly spread, the first and the last kept.
            let last = cuts.len() - 1;
            let chosen: BTreeSet<usize> = (0..CrashFs::MAX_CUTS)
                .map(|i| i * last / (CrashFs::MAX_CUTS - 1))
                .collect();
            cuts = chosen.into_iter().map(|i| cuts[i]).collect();
        }
        cuts
    }

    /// How much of the unsynced changes `cut` keeps, against how much they all hold.
    fn kept(&self, cut: Cut) -> Kept {
        let mut kept = Kept::default();
        for (i, change) in self.unsynced.iter().enumerate() {
            let share = if i < cut.whole {
                Some(false)
            } else if i == cut.whole && cut.half {
                Some(true)
            } else {
                None
            };
            match change {
                Change::Write { bytes, .. } => {
                    kept.bytes.1 += bytes.len();
                    kept.bytes.0 += match share {
                        Some(false) => bytes.len(),
                        Some(true) => bytes.len() / 2,
                        None => 0,
                    };
                }
                Change::SetLen { .. } => {
                    kept.set_lens.1 += 1;
                    kept.set_lens.0 += usize::from(share == Some(false));
                }
            }
        }
        kept
    }
}

/// What [`FileData::kept`] counts: bytes written and `set_len` calls, each as (kept, all).
#[derive(Clone, Copy, Debug, Default)]
struct Kept {
    bytes: (usize, usize),
    set_lens: (usize, usize),
}

impl Model {
    /// The distinct durable images of this model, as the `testing` module documentation lists
    /// them.
    pub(super) fn images(&self) -> Vec<Image> {
        let pending: Vec<(NodeId, usize)> = (0..self.nodes.len())
            .filter_map(|node| self.dir(node).map(|dir| (node, dir.pending.len())))
            .flat_map(|(node, count)| (0..count).map(move |i| (node, i)))
            .collect();
        let unsynced: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&node| {
                self.file(node)
                    .is_some_and(|data| !data.unsynced.is_empty())
            })
            .collect();
        let cuts: Vec<Vec<Cut>> = unsynced
            .iter()
            .map(|&node| self.file(node).map(FileData::cuts).unwrap_or_default())
            .collect();
        let paths = self.current_paths();
        let mut seen = BTreeSet::new();
        let mut contents: HashMap<(NodeId, Cut), Arc<[u8]>> = HashMap::new();
        let mut images = Vec::new();
        for kept in op_subsets(pending.len()) {
            let kept_ops: BTreeSet<(NodeId, usize)> = pending
                .iter()
                .zip(&kept)
                .filter_map(|(&op, &keep)| keep.then_some(op))
                .collect();
            for choice in data_combinations(&cuts) {
                let cut_of: HashMap<NodeId, Cut> = unsynced
                    .iter()
                    .copied()
                    .zip(choice.iter().copied())
                    .collect();
                let layout = self.layout(&kept_ops, &cut_of);
                if !seen.insert(layout.clone()) {
                    continue;
                }
                let entries = layout
                    .iter()
                    .map(|(path, entry)| {
                        let entry = match *entry {
                            Laid::Dir => Entry::Dir,
                            Laid::File(node, cut) => Entry::File(
                                contents
                                    .entry((node, cut))
                                    .or_insert_with(|| {
                                        self.file(node)
                                            .map(|data| Arc::from(data.bytes(cut)))
                                            .unwrap_or_default()
                                    })
                                    .clone(),
                            ),
                        };
                        (path.clone(), entry)
                    })
                    .collect();
                let description = self.describe(&pending, &kept_ops, &layout, &paths);
                images.push(Image {
                    entries,
                    description,
                });
            }
        }
        images
    }

    /// What an image holds: each path under the root, a directory or a file with the changes
    /// `cut_of` its node keeps, when the directory operations `kept` are kept.
    fn layout(
        &self,
        kept: &BTreeSet<(NodeId, usize)>,
        cut_of: &HashMap<NodeId, Cut>,
    ) -> BTreeMap<PathBuf, Laid> {
        let mut layout = BTreeMap::new();
        let mut visited = BTreeSet::from([ROOT]);
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((node, path)) = stack.pop() {
            let Some(dir) = self.dir(node) else { continue };
            let mut entries = dir.durable.clone();
            for (i, op) in dir.pending.iter().enumerate() {
                if !kept.contains(&(node, i)) {
                    continue;
                }
                match op {
                    DirOp::Create { name, node } => {
                        entries.insert(name.clone(), *node);
                    }
                    DirOp::Rename { from, to, node } => {
                        entries.remove(from);
                        entries.insert(to.clone(), *node);
                    }
                    DirOp::Remove { name } => {
                        entries.remove(name);
                    }
                }
            }
            for (name, child) in entries {
                let child_path = path.join(&name);
                if self.dir(child).is_some() {
                    // A directory has one entry; the check only guards against a loop.
                    if visited.insert(child) {
                        layout.insert(child_path.clone(), Laid::Dir);
                        stack.push((child, child_path));
                    }
                } else {
                    let cut = cut_of.get(&child).copied().unwrap_or(Cut::NONE);
                    layout.insert(child_path, Laid::File(child, cut));
                }
            }
        }
        layout
    }

    /// Says which choices made an image.
    fn describe(
        &self,
        pending: &[(NodeId, usize)],
        kept: &BTreeSet<(NodeId, usize)>,
        layout: &BTreeMap<PathBuf, Laid>,
        paths: &HashMap<NodeId, PathBuf>,
    ) -> String {
        let name_of = |node: NodeId| {
            paths.get(&node).map_or_else(
                || format!("removed #{node}"),
                |p| format!("\"{}\"", p.display()),
            )
        };
        let op_text = |&(dir, i): &(NodeId, usize)| {
            let op = self.dir(dir).and_then(|d| d.pending.get(i));
            let what = match op {
                Some(DirOp::Create { name, .. }) => format!("create \"{}\"", name.display()),
                Some(DirOp::Rename { from, to, .. }) => {
                    format!("rename \"{}\" to \"{}\"", from.display(), to.display())
                }
                Some(DirOp::Remove { name }) => format!("remove \"{}\"", name.display()),
                None => String::from("?"),
            };
            format!("{what} in {}", name_of(dir))
        };
        let list = |keep: bool| {
            let items: Vec<String> = pending
                .iter()
                .filter(|op| kept.contains(op) == keep)
                .map(op_text)
                .collect();
            if items.is_empty() {
                String::from("none")
            } else {
                items.join(", ")
            }
        };
        let mut parts = Vec::new();
        if !pending.is_empty() {
            parts.push(format!("unsynced entries kept: {}", list(true)));
            parts.push(format!("dropped: {}", list(false)));
        }
        let mut shown = BTreeSet::new();
        for entry in layout.values() {
            let &Laid::File(node, cut) = entry else {
                continue;
            };
            let Some(data) = self.file(node) else {
                continue;
            };
            if data.unsynced.is_empty() || !shown.insert(node) {
                continue;
            }
            let kept = data.kept(cut);
            let half = if cut.half { " and half the next" } else { "" };
            let (kept_bytes, total) = kept.bytes;
            let (what, counts) = match kept.set_lens {
                (_, 0) => ("writes", format!("{kept_bytes} of {total} bytes")),
                (kept_set_lens, set_lens) => (
                    "changes",
                    format!(
                        "{kept_bytes} of {total} bytes written, \
                         {kept_set_lens} of {set_lens} set_len"
                    ),
                ),
            };
            parts.push(format!(
                "data of {}: {} of {} unsynced {what}{half} kept ({counts})",
                name_of(node),
                cut.whole,
                data.unsynced.len(),
            ));
        }
        if parts.is_empty() {
            String::from("everything was synced")
        } else {
            parts.join("; ")
        }
    }
}

/// An image's entry, by reference to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Laid {
    Dir,
    File(NodeId, Cut),
}

/// Which of `count` directory operations each image keeps: all subsets while there are
/// few, then all, none, each one alone dropped and each one alone kept. All kept comes first
/// and none kept last.
fn op_subsets(count: usize) -> Vec<Vec<bool>> {
    if count <= CrashFs::MAX_EXHAUSTIVE_OPS {
        return (0..1_usize << count)
            .rev()
            .map(|mask| (0..count).map(|i| mask & (1 << i) != 0).collect())
            .collect();
    }
    let mut subsets = vec![vec![true; count]];
    for keep in [false, true] {
        for i in 0..count {
            let mut subset = vec![!keep; count];
            subset[i] = keep;
            subsets.push(subset);
        }
    }
    subsets.push(vec![false; count]);
    subsets
}

/// Which cut of each file each image takes: every combination while there are few, then
/// the files' cuts one file at a time with the others keeping everything, and with them
/// keeping nothing. The combination that keeps everything comes first and the one that keeps
/// nothing last.
fn data_combinations(cuts: &[Vec<Cut>]) -> Vec<Vec<Cut>> {
    let last = |c: &Vec<Cut>| c.last().copied().unwrap_or(Cut::NONE);
    let all: Vec<Cut> = cuts.iter().map(last).collect();
    let none = vec![Cut::NONE; cuts.len()];
    let count = cuts
        .iter()
        .try_fold(1_usize, |n, c| n.checked_mul(c.len().max(1)));
    let mut combinations = Vec::new();
    if count.is_some_and(|n| n <= CrashFs::MAX_DATA_COMBINATIONS) {
        combinations.push(Vec::new());
        for file_cuts in cuts {
            combinations = combinations
                .into_iter()
                .flat_map(|prefix: Vec<Cut>| {
                    file_cuts.iter().rev().map(move |&cut| {
                        let mut next = prefix.clone();
                        next.push(cut);
                        next
                    })
                })
                .collect();
        }
    } else {
        combinations.push(all.clone());
        for base in [&all, &none] {
            for (i, file_cuts) in cuts.iter().enumerate() {
                for &cut in file_cuts {
                    let mut next = base.clone();
                    next[i] = cut;
                    combinations.push(next);
                }
            }
        }
        combinations.push(none);
    }
    combinations
}

/// A durable image: what a [`CrashFs`]'s root could hold after a power loss, as paths
/// relative to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    entries: BTreeMap<PathBuf, Entry>,
    description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Arc<[u8]>),
}

impl Image {
    /// The bytes of the file at `path` (relative to the root) in this image, if there is one.
    pub fn file(&self, path: impl AsRef<Path>) -> Option<&[u8]> {
        match self.entries.get(path.as_ref())? {
            Entry::File(bytes) => Some(bytes),
            Entry::Dir => None,
        }
    }

    /// The paths of the files and directories in this image, relative to the root, sorted
    /// (a directory before what it holds).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.keys().map(PathBuf::as_path)
    }

    /// Writes this image into the directory `into` (created if missing): the root's contents
    /// as they would be after the power loss.
    pub fn materialise(&self, into: impl AsRef<Path>) -> io::Result<()> {
        let into = into.as_ref();
        std::fs::create_dir_all(into)?;
        // Sorted, so each directory comes before what it holds.
        for (path, entry) in &self.entries {
            let target = into.join(path);
            match entry {
                Entry::Dir => std::fs::create_dir(&target)?,
                Entry::File(bytes) => std::fs::write(&target, bytes)?,
            }
        }
        Ok(())
    }
}

/// The choices that made the image: which unsynced directory operations it keeps and which
/// it drops, and how much of each file's unsynced data it keeps.
impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries = f.debug_map();
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir => entries.entry(path, &"directory"),
                Entry::File(bytes) => entries.entry(path, &format_args!("{} bytes", bytes.len())),
            };
        }
        entries.finish()?;
        write!(f, " ({})", self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_unsynced_operations_and_writes_stay_tractable() {
        assert_eq!(op_subsets(3).len(), 8);
        assert_eq!(op_subsets(3)[0], [true; 3]);
        assert_eq!(op_subsets(3)[7], [false; 3]);
        let many = op_subsets(CrashFs::MAX_EXHAUSTIVE_OPS + 2);
        assert_eq!(many.len(), 2 + 2 * (CrashFs::MAX_EXHAUSTIVE_OPS + 2));
        let data = FileData {
            durable: Arc::from(&b""[..]),
            unsynced: (0..100)
                .map(|i| Change::Write {
                    offset: i * 2,
                    bytes: Arc::from(&b"ab"[..]),
                })
                .collect(),
        };
        let cuts = data.cuts();
        assert_eq!(cuts.len(), CrashFs::MAX_CUTS);
        assert_eq!(cuts[0], Cut::NONE);
        assert_eq!(
            cuts[CrashFs::MAX_CUTS - 1],
            Cut {
                whole: 100,
                half: false
            }
        );
        let combinations = data_combinations(&[cuts.clone(), cuts.clone(), cuts]);
        assert_eq!(combinations.len(), 2 + 2 * 3 * CrashFs::MAX_CUTS);
    }
}
