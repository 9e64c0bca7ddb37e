//! The crate's modules form layers: no module imports, directly or through others, a module
//! that imports it back. Read from the sources (`crate::` and `super::` paths, the root's
//! re-exports resolved to their modules; test code and comments left out), so that a new import
//! cycle fails `cargo test` with the cycle named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name (`store::sql`) to its source file.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                if parts.last().is_some_and(|l| l == "lib" || l == "mod") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The source without comments and without the test module that ends most files.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let test_module = |l: &&str| l.trim_start().starts_with("mod ") && l.contains('{');
        if trimmed.starts_with("#[cfg(test)]") && lines.peek().is_some_and(test_module) {
            break;
        }
        if !trimmed.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The paths a source names after `prefix` (`crate::`, `super::`), group imports expanded.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let boundary = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[i + prefix.len()..];
        if !boundary {
            continue;
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let after = &rest[path.len()..];
        if path.ends_with("::") && after.starts_with('{') {
            let group = &after[1..after.find('}').unwrap_or(after.len())];
            for item in group.split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                if !item.is_empty() && !item.contains('{') {
                    out.push(format!("{path}{item}"));
                }
            }
        } else {
            out.push(path.trim_end_matches(':').to_owned());
        }
    }
    out
}

/// The module a path names: its longest prefix that is a module (root re-exports followed).
fn module_of(path: &str, names: &BTreeSet<String>, reexports: &BTreeMap<String, String>) -> Option<String> {
    let mut path = path.trim_end_matches("::self").to_owned();
    let first = path.split("::").next().unwrap_or("").to_owned();
    if !names.contains(&first)
        && let Some(source) = reexports.get(&first)
    {
        path = format!("{source}{}", &path[first.len()..]);
    }
    let segments: Vec<&str> = path.split("::").collect();
    (1..=segments.len())
        .rev()
        .map(|k| segments[..k].join("::"))
        .find(|candidate| names.contains(candidate))
}

/// `module -> modules it imports`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let names: BTreeSet<String> = modules.keys().filter(|m| !m.is_empty()).cloned().collect();
    let root = code(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut reexports = BTreeMap::new();
    for line in root.lines().filter(|l| l.starts_with("pub use crate::")) {
        for path in paths_after(line, "crate::") {
            if let Some((module, item)) = path.rsplit_once("::") {
                reexports.insert(item.to_owned(), module.to_owned());
            }
        }
    }
    let mut edges = BTreeMap::new();
    for (module, file) in &modules {
        if module.is_empty() {
            continue;
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut targets: Vec<String> = paths_after(&text, "crate::");
        targets.extend(
            paths_after(&text, "super::").into_iter().map(
                |p| {
                    if parent.is_empty() { p } else { format!("{parent}::{p}") }
                },
            ),
        );
        let found: BTreeSet<String> = targets
            .iter()
            .filter_map(|t| module_of(t, &names, &reexports))
            .filter(|t| t != module)
            .collect();
        edges.insert(module.clone(), found);
    }
    edges
}

/// A cycle of the graph, if it has one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    // The reading itself works: the layers it must see are there.
    assert!(edges["service"].contains("store"), "{edges:?}");
    assert!(edges["store::record"].contains("id"), "{edges:?}");
    assert!(edges["error"].contains("kind"), "{edges:?}");
    assert_eq!(cycle(&edges), None, "an import cycle between modules");
    // And the same check on the tree's top-level modules (a module and its children as one).
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let head = |m: &str| m.split("::").next().unwrap_or("").to_owned();
    for (from, to) in &edges {
        let entry = top.entry(head(from)).or_default();
        entry.extend(to.iter().map(|t| head(t)).filter(|t| *t != head(from)));
    }
    assert_eq!(cycle(&top), None, "an import cycle between top-level modules");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    edges.entry("c".into()).or_default().insert("a".into());
    edges.entry("d".into()).or_default().insert("a".into());
    let found = cycle(&edges).unwrap();
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4, "{found:?}");
    edges.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&edges), None);
    // Paths are read as modules: groups, re-exports, `super::`.
    let names: BTreeSet<String> = ["store", "store::sql", "id"].map(String::from).into();
    let reexports: BTreeMap<String, String> = [("UserId".to_owned(), "id".to_owned())].into();
    assert_eq!(
        paths_after("use crate::store::{sql::SqlBackend, DeleteOutcome};", "crate::"),
        ["store::sql::SqlBackend", "store::DeleteOutcome"]
    );
    assert_eq!(
        module_of("store::sql::SqlBackend", &names, &reexports).as_deref(),
        Some("store::sql")
    );
    assert_eq!(module_of("UserId", &names, &reexports).as_deref(), Some("id"));
}
