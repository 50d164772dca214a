//! `inventory.json`: which snapshots are published and which prefixes each
//! holds (docs/metadata.md, "inventory.json", schema
//! `dist-mirror.inventory.v1`). Knows nothing of config or stages: give it
//! the publication root (`<workdir>/repo`).
//!
//! - Source: `<root>/snapshots/`, or `<root>` itself if its last component
//!   is `snapshots`. A missing directory gives `latest: null` and
//!   `prefixes_by_snapshot: {}`.
//! - Snapshots: its entries that are directories (a symlink to a directory
//!   counts), sorted by name.
//! - Prefixes: a snapshot's entries that are directories or symlinks
//!   (dangling ones count), except `.dist-mirror`; sorted by name.
//! - `latest`: the greatest snapshot name, or `null`.
//!
//! Names are sorted by code point (byte order of UTF-8); a name that is
//! not UTF-8 is written lossily (U+FFFD). Rendered by
//! [`crate::json::to_pretty_string`] (byte-identical to mirrorer 0.1.0).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The schema name written in `schema`.
pub const SCHEMA: &str = "dist-mirror.inventory.v1";

/// The entry of a snapshot directory that is never a prefix.
pub const METADATA_ENTRY: &str = ".dist-mirror";

/// The inventory document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// The greatest snapshot name, if any.
    pub latest: Option<String>,
    /// Snapshot name -> sorted prefixes.
    pub prefixes_by_snapshot: BTreeMap<String, Vec<String>>,
    /// [`SCHEMA`].
    pub schema: &'static str,
}

/// A directory of the published tree could not be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read {}", path.display())]
pub struct InventoryError {
    /// The directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The directory the snapshots are read from (see the module docs).
pub fn snapshots_dir(publication_root: &Path) -> PathBuf {
    if publication_root
        .file_name()
        .is_some_and(|n| n == "snapshots")
    {
        publication_root.to_path_buf()
    } else {
        publication_root.join("snapshots")
    }
}

fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, InventoryError> {
    let err = |source| InventoryError {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Builds the inventory of the tree under `publication_root`.
///
/// # Errors
/// [`InventoryError`] if the snapshots directory exists but cannot be
/// listed, or a snapshot directory cannot be listed.
pub fn build(publication_root: &Path) -> Result<Inventory, InventoryError> {
    let dir = snapshots_dir(publication_root);
    let mut prefixes_by_snapshot = BTreeMap::new();
    if dir.is_dir() {
        for (name, path) in entries(&dir)? {
            if !path.is_dir() {
                continue;
            }
            let mut prefixes = Vec::new();
            for (prefix, p) in entries(&path)? {
                if prefix == METADATA_ENTRY {
                    continue;
                }
                let is_link = fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
                if is_link || p.is_dir() {
                    prefixes.push(prefix);
                }
            }
            prefixes_by_snapshot.insert(name, prefixes);
        }
    }
    Ok(Inventory {
        latest: prefixes_by_snapshot.keys().next_back().cloned(),
        prefixes_by_snapshot,
        schema: SCHEMA,
    })
}

/// The canonical JSON text of `inventory` (docs/metadata.md, "JSON rendering").
///
/// # Errors
/// Only if serialisation fails, which this type cannot cause.
pub fn render(inventory: &Inventory) -> serde_json::Result<String> {
    crate::json::to_pretty_string(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_gives_an_empty_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let inv = build(&dir.path().join("repo")).unwrap();
        assert_eq!(
            render(&inv).unwrap(),
            "{\n  \"latest\": null,\n  \"prefixes_by_snapshot\": {},\n  \"schema\": \"dist-mirror.inventory.v1\"\n}\n"
        );
    }

    #[test]
    fn root_named_snapshots_is_used_itself() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        fs::create_dir_all(snaps.join("s1/debian")).unwrap();
        let inv = build(&snaps).unwrap();
        assert_eq!(inv.latest.as_deref(), Some("s1"));
        assert_eq!(inv.prefixes_by_snapshot["s1"], vec!["debian"]);
    }
}
