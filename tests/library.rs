//! Rules the library keeps, checked on its source (no GPU needed): it reads no environment
//! variable (only the `wgrad` command and the benches map `WGRAD_*` onto `Options`), and no
//! source file cites a document outside the repository.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "wgsl" || x == "md" || x == "toml")
        {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_library_reads_no_environment_variable() {
    let src = root().join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let library: Vec<&PathBuf> = all
        .iter()
        .filter(|p| !p.starts_with(src.join("cli")) && *p != &src.join("main.rs"))
        .collect();
    assert!(
        library.len() > 50,
        "found only {} library files",
        library.len()
    );
    // Spelled in pieces, so that this file does not match itself.
    let needles = [
        concat!("env", "::var"),
        concat!("var", "_os("),
        concat!("env", "::vars"),
    ];
    for p in library {
        let text = std::fs::read_to_string(p).unwrap();
        for n in needles {
            assert!(
                !text.contains(n),
                "{} reads the environment ({n}): map it onto wgrad::Options in the CLI instead",
                p.display()
            );
        }
    }
}

#[test]
fn sources_cite_nothing_outside_the_repository() {
    let mut all = Vec::new();
    for d in ["src", "shaders", "tests", "benches", "examples", "docs"] {
        if root().join(d).is_dir() {
            files(&root().join(d), &mut all);
        }
    }
    all.push(root().join("README.md"));
    let needles = [
        concat!("DESIGN", ".md"),
        concat!("../", "shared"),
        concat!("design", " notes"),
    ];
    for p in &all {
        let text = std::fs::read_to_string(p).unwrap();
        for n in needles {
            assert!(
                !text.contains(n),
                "{} cites {n}, which is not in the repository (docs/ARCHITECTURE.md is)",
                p.display()
            );
        }
    }
}
