//! Where the repository's files are: the root this crate belongs to and the template in it.

use std::path::{Path, PathBuf};

/// The repository root (the workspace this crate belongs to).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .expect("local/ sits inside the repository")
}

/// `template.yaml` at the root, or `KIT_TEMPLATE` when set.
pub fn project_template_path() -> PathBuf {
    if let Ok(path) = std::env::var("KIT_TEMPLATE") {
        return PathBuf::from(path);
    }
    project_root().join("template.yaml")
}
