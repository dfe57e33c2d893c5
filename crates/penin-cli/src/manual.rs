//! `penin completions SHELL` and `penin man`: the command line, described for shells and
//! for man(1), generated from the same definitions clap parses with, so they never drift.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Args;

/// Writes the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let mut command = Args::command();
    // Into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "penin", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// Writes the manual page to `out`, or with `dir`, `penin.1` and one `penin-COMMAND.1` per
/// command (nested commands too: `penin-backup-push.1`) into `dir`.
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let mut command = Args::command();
    // Built, each subcommand knows its full name (`penin-backup-push`), which its page takes.
    command.build();
    let Some(dir) = dir else {
        clap_mangen::Man::new(command).render(out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = 0;
    page(&command, dir, &mut written)?;
    writeln!(out, "Wrote {written} manual pages into {}", dir.display())?;
    Ok(())
}

/// Writes the page of `command` (`penin.1`, `penin-backup-push.1`), then those of its
/// subcommands (`help` has none).
fn page(command: &clap::Command, dir: &Path, written: &mut usize) -> Result<()> {
    let name = command.get_display_name().unwrap_or(command.get_name());
    let path = dir.join(format!("{name}.1"));
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut file = BufWriter::new(file);
    clap_mangen::Man::new(command.clone())
        .render(&mut file)
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    *written += 1;
    for sub in command.get_subcommands() {
        if sub.get_name() != "help" {
            page(sub, dir, written)?;
        }
    }
    Ok(())
}
