//! The layout of the code against its description: every path that
//! `docs/architecture.md` names exists, every module of the lab is placed
//! there, no source file outside tests is over 700 lines, and nothing
//! cites a design file the repository does not hold.

use std::path::{Path, PathBuf};

/// The repository's top directory (the lab crate's parent).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn architecture() -> String {
    std::fs::read_to_string(repo().join("docs/architecture.md")).unwrap()
}

/// The code spans of `text` that look like a source path: lowercase
/// letters, digits, `_`, `.`, `-` and `/`, ending in `.rs` or `/`.
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && (s.ends_with(".rs") || (s.ends_with('/') && s.len() > 1))
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_./-".contains(c))
        })
        .map(str::to_string)
        .collect()
}

/// A path of the architecture page resolves against the repository, the
/// lab's sources or the primitive's sources.
fn resolves(path: &str) -> bool {
    let repo = repo();
    [
        repo.clone(),
        repo.join("lab/src"),
        repo.join("lab/lifeline/src"),
    ]
    .iter()
    .any(|root| root.join(path).exists())
}

fn architecture_names_only_paths_that_exist() {
    let named = named_paths(&architecture());
    assert!(named.len() > 40, "too few paths read: {named:?}");
    let missing: Vec<&String> = named.iter().filter(|p| !resolves(p)).collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}

fn architecture_places_every_module_of_the_lab() {
    let text = architecture();
    let named = named_paths(&text);
    let mut unplaced = Vec::new();
    for entry in std::fs::read_dir(repo().join("lab/src")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let shown = if name.ends_with(".rs") {
            name.clone()
        } else {
            format!("{name}/")
        };
        let is_module_file = name.ends_with(".rs")
            && !["lib.rs", "main.rs"].contains(&name.as_str())
            && !name.ends_with("_tests.rs");
        let placed = named.iter().any(|p| p == &shown || p.starts_with(&shown));
        if (is_module_file || !name.contains('.')) && !placed {
            unplaced.push(shown);
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules of lab/src that docs/architecture.md does not place: {unplaced:?}"
    );
}

/// Every `.rs` file below `dir`, recursively.
fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

fn no_source_file_outside_tests_is_over_700_lines() {
    let repo = repo();
    let mut files = Vec::new();
    for dir in ["lab/src", "lab/lifeline/src", "lab/testkit/src"] {
        sources(&repo.join(dir), &mut files);
    }
    assert!(files.len() > 100, "too few sources read: {}", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name != "tests.rs"
                && !name.ends_with("_tests.rs")
                && !p.components().any(|c| c.as_os_str() == "tests")
        })
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p).unwrap().lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "source files over 700 lines: {long:?}");
}

fn the_design_cited_is_the_projects_own() {
    let repo = repo();
    assert!(repo.join("docs/design.md").is_file());
    let mut files = Vec::new();
    sources(&repo.join("lab"), &mut files);
    files.push(repo.join("README.md"));
    for entry in std::fs::read_dir(repo.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let needle = ["DESIGN", ".md"].concat();
    let citing: Vec<String> = files
        .iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&needle)))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        citing.is_empty(),
        "files citing a design file the project does not hold: {citing:?}"
    );
}

tests! {
    architecture_names_only_paths_that_exist;
    architecture_places_every_module_of_the_lab;
    no_source_file_outside_tests_is_over_700_lines;
    the_design_cited_is_the_projects_own;
}
