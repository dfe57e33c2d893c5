//! The model behind [`CrashFs`](super::CrashFs): what is durable and what was only done.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;

/// The index of a file or directory in [`Model::nodes`].
pub(super) type NodeId = usize;

/// The root directory's node.
pub(super) const ROOT: NodeId = 0;

/// The files and directories under the root, durable and not.
#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) nodes: Vec<Node>,
}

#[derive(Clone, Debug)]
pub(super) enum Node {
    Dir(Dir),
    File(FileData),
}

#[derive(Clone, Debug, Default)]
pub(super) struct Dir {
    /// The entries as the running process sees them.
    pub(super) current: BTreeMap<OsString, NodeId>,
    /// The entries as of the directory's last sync.
    pub(super) durable: BTreeMap<OsString, NodeId>,
    /// The entry operations since then, in order.
    pub(super) pending: Vec<DirOp>,
}

/// An operation on a directory's entries.
#[derive(Clone, Debug)]
pub(super) enum DirOp {
    Create {
        name: OsString,
        node: NodeId,
    },
    Rename {
        from: OsString,
        to: OsString,
        node: NodeId,
    },
    Remove {
        name: OsString,
    },
}

#[derive(Clone, Debug, Default)]
pub(super) struct FileData {
    /// The bytes as of the file's last sync.
    pub(super) durable: Arc<[u8]>,
    /// The changes since then, in order.
    pub(super) unsynced: Vec<Change>,
}

/// One change of a file's data.
#[derive(Clone, Debug)]
pub(super) enum Change {
    /// A write: `bytes` at `offset`.
    Write { offset: u64, bytes: Arc<[u8]> },
    /// A `set_len`: the file cut to `len` bytes, or extended to it with zeros. Never torn:
    /// an image keeps it or not.
    SetLen { len: u64 },
}

impl Change {
    /// Applies the change to `bytes`: of a write, only its first half if `half`; of a
    /// `set_len`, nothing if `half`.
    fn apply(&self, bytes: &mut Vec<u8>, half: bool) {
        match self {
            Self::Write {
                offset,
                bytes: written,
            } => {
                let piece = if half {
                    &written[..written.len() / 2]
                } else {
                    &written[..]
                };
                // Offsets past the address space cannot come from a real write of memory.
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(piece.len());
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                if let Some(target) = bytes.get_mut(start..end) {
                    target.copy_from_slice(piece);
                }
            }
            Self::SetLen { len } if !half => {
                // A length past the address space cannot be held in memory: such a test
                // fails here, as it would on the first write.
                bytes.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0);
            }
            Self::SetLen { .. } => {}
        }
    }
}

/// How much of a file's unsynced changes an image keeps: the first `whole` of them, and the
/// first half of the next one if `half` (only ever a write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Cut {
    pub(super) whole: usize,
    pub(super) half: bool,
}

impl Cut {
    pub(super) const NONE: Self = Self {
        whole: 0,
        half: false,
    };
}

impl FileData {
    /// Makes every change durable.
    pub(super) fn sync(&mut self) {
        if !self.unsynced.is_empty() {
            let cut = Cut {
                whole: self.unsynced.len(),
                half: false,
            };
            self.durable = self.bytes(cut).into();
            self.unsynced.clear();
        }
    }

    /// The durable bytes with the changes that `cut` keeps applied, in order.
    pub(super) fn bytes(&self, cut: Cut) -> Vec<u8> {
        let mut bytes = self.durable.to_vec();
        let whole = self.unsynced.iter().take(cut.whole).map(|c| (c, false));
        let half = cut.half.then(|| self.unsynced.get(cut.whole)).flatten();
        for (change, half) in whole.chain(half.map(|c| (c, true))) {
            change.apply(&mut bytes, half);
        }
        bytes
    }
}

impl Model {
    pub(super) fn add(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    pub(super) fn dir(&self, node: NodeId) -> Option<&Dir> {
        match self.nodes.get(node)? {
            Node::Dir(dir) => Some(dir),
            Node::File(_) => None,
        }
    }

    pub(super) fn dir_mut(&mut self, node: NodeId) -> Option<&mut Dir> {
        match self.nodes.get_mut(node)? {
            Node::Dir(dir) => Some(dir),
            Node::File(_) => None,
        }
    }

    pub(super) fn file(&self, node: NodeId) -> Option<&FileData> {
        match self.nodes.get(node)? {
            Node::File(data) => Some(data),
            Node::Dir(_) => None,
        }
    }

    pub(super) fn file_mut(&mut self, node: NodeId) -> Option<&mut FileData> {
        match self.nodes.get_mut(node)? {
            Node::File(data) => Some(data),
            Node::Dir(_) => None,
        }
    }

    /// The node at the end of `names`, as the running process sees it.
    pub(super) fn lookup(&self, names: &[&OsStr]) -> Option<NodeId> {
        names.iter().try_fold(ROOT, |node, name| {
            self.dir(node)?.current.get(*name).copied()
        })
    }

    /// Records the creation of the missing directories along `names`.
    pub(super) fn create_dirs(&mut self, names: &[&OsStr]) -> Option<()> {
        let mut node = ROOT;
        for name in names {
            node = match self.dir(node)?.current.get(*name) {
                Some(&next) => next,
                None => self.link(node, name, Node::Dir(Dir::default()))?,
            };
        }
        // What is there must be a directory.
        self.dir(node).map(|_| ())
    }

    /// Records the creation of an empty file at `names`.
    pub(super) fn create_file(&mut self, names: &[&OsStr]) -> Option<NodeId> {
        let (name, dir) = names.split_last()?;
        let parent = self.lookup(dir)?;
        self.link(parent, name, Node::File(FileData::default()))
    }

    /// Adds `node` to the model and an entry for it to the directory `parent`.
    fn link(&mut self, parent: NodeId, name: &OsStr, node: Node) -> Option<NodeId> {
        self.dir(parent)?;
        let id = self.add(node);
        let dir = self.dir_mut(parent)?;
        dir.current.insert(name.to_owned(), id);
        dir.pending.push(DirOp::Create {
            name: name.to_owned(),
            node: id,
        });
        Some(id)
    }

    /// Records the rename of `from` to `to` in the directory at `dir`.
    pub(super) fn rename(&mut self, dir: &[&OsStr], from: &OsStr, to: &OsStr) -> Option<()> {
        let parent = self.lookup(dir)?;
        let dir = self.dir_mut(parent)?;
        let node = dir.current.remove(from)?;
        dir.current.insert(to.to_owned(), node);
        dir.pending.push(DirOp::Rename {
            from: from.to_owned(),
            to: to.to_owned(),
            node,
        });
        Some(())
    }

    /// Records the removal of the entry at `names`.
    pub(super) fn remove(&mut self, names: &[&OsStr]) -> Option<()> {
        let (name, dir) = names.split_last()?;
        let parent = self.lookup(dir)?;
        let dir = self.dir_mut(parent)?;
        dir.current.remove(*name)?;
        dir.pending.push(DirOp::Remove {
            name: (*name).to_owned(),
        });
        Some(())
    }

    /// The path of each node as the running process sees it, for descriptions.
    pub(super) fn current_paths(&self) -> HashMap<NodeId, PathBuf> {
        let mut paths = HashMap::from([(ROOT, PathBuf::from("."))]);
        let mut stack = vec![(ROOT, PathBuf::new())];
        while let Some((node, path)) = stack.pop() {
            let Some(dir) = self.dir(node) else { continue };
            for (name, &child) in &dir.current {
                let child_path = path.join(name);
                if paths.insert(child, child_path.clone()).is_none() {
                    stack.push((child, child_path));
                }
            }
        }
        paths
    }
}
