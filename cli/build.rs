//! Records the git commit the binary is built from, for `neuronx --version`: the short hash,
//! with `-dirty` when tracked files differed from it, or `unknown` outside a git checkout (a
//! source tarball, or git not installed).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        // Never take the index lock: other builds and commits run in this tree at the same time.
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

/// Asks cargo to run this again when `git_path` (a path inside the git directory) changes.
/// Only existing files are named: a missing one would make cargo run this on every build.
fn watch(git_path: &str) -> bool {
    match git(&["rev-parse", "--git-path", git_path]) {
        Some(path) if Path::new(&path).is_file() => {
            println!("cargo:rerun-if-changed={path}");
            true
        }
        _ => false,
    }
}

fn commit() -> String {
    // Only the workspace's own checkout counts (this package is `cli/` inside it), not a
    // repository it happens to be unpacked in.
    if !Path::new("../.git").exists() {
        return "unknown".into();
    }
    let Some(hash) = git(&["rev-parse", "--short", "HEAD"]).filter(|h| !h.is_empty()) else {
        return "unknown".into();
    };
    // HEAD moves when a branch is checked out; the branch's ref moves on every commit (a loose
    // file, or packed-refs once git has packed it).
    watch("HEAD");
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if !watch(&branch) {
            watch("packed-refs");
        }
    }
    // Tracked changes only, as `git describe --dirty` counts them. The index is deliberately
    // not watched (every `git add` would rebuild the crate), so this is the state of the tree
    // when the hash last changed or this script last ran.
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    if dirty {
        format!("{hash}-dirty")
    } else {
        hash
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=NEURONX_GIT_COMMIT={}", commit());
}
