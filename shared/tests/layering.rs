//! The shape of the library: services depend on each other in one direction only, and no
//! source file grows past [`MAX_LINES`].
//!
//! A service is a top-level module under `src/services/` (a file `x.rs` or a directory
//! `x/`). Its dependencies are the other services named by `crate::services::<name>` (in
//! paths and in `use crate::services::{a, b}` groups) and, in a file at the top of
//! `src/services/`, by `super::<name>`; from a file `x/y.rs`, `super::super::<name>`.
//! Comment lines are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The most lines one file under `src/` may have, its unit tests included.
const MAX_LINES: usize = 800;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The service a file under `src/services/` belongs to, and how deep below
/// `src/services/` its module sits (1 for `x.rs` and `x/mod.rs`, 2 for `x/y.rs`).
fn service_of(services: &Path, file: &Path) -> Option<(String, usize)> {
    let rel = file.strip_prefix(services).ok()?;
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let first = parts.first()?;
    if parts.len() == 1 {
        if first == "mod.rs" {
            return None;
        }
        return Some((first.trim_end_matches(".rs").to_string(), 1));
    }
    // `x/mod.rs` is the module `x` itself: its `super` is `services`.
    let depth = if parts.last().is_some_and(|l| l == "mod.rs") {
        parts.len() - 1
    } else {
        parts.len()
    };
    Some((first.clone(), depth))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// Names that follow `prefix` in `code`: `prefix name` or `prefix {a, b::c, d}`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // The first name of each item at the group's own level.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && depth == 0 && is_ident(c) => {
                        names.push(ident(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Each service with the services it uses.
fn service_graph() -> BTreeMap<String, BTreeSet<String>> {
    let services_dir = src().join("services");
    let mut files = Vec::new();
    rust_files(&services_dir, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut uses: Vec<(String, usize, String)> = Vec::new();
    for file in &files {
        let Some((service, depth)) = service_of(&services_dir, file) else {
            continue;
        };
        graph.entry(service.clone()).or_default();
        let text = fs::read_to_string(file).unwrap_or_default();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        uses.push((service, depth, code));
    }
    for (service, depth, code) in &uses {
        let mut named = names_after(code, "crate::services::");
        // From depth 1 `super::` is `services`; from depth 2 it is `super::super::`.
        let up = "super::".repeat(*depth);
        named.extend(names_after(code, &up));
        for name in named {
            if &name != service && graph.contains_key(&name) {
                graph.entry(service.clone()).or_default().insert(name);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the services along it (the first repeated at the end).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(node, graph, &mut marks, &mut path) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_graph_reader_sees_uses() {
    let code = "use crate::services::{bills, charges::{Payee, Payer}};\nlet x = super::codes::f();\nfoo::crate::services::nope";
    assert_eq!(names_after(code, "crate::services::"), ["bills", "charges"]);
    assert_eq!(names_after(code, "super::"), ["codes"]);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    graph.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn services_depend_on_each_other_in_one_direction() {
    let graph = service_graph();
    assert!(graph.len() > 5, "no services found under src/services");
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = graph
            .iter()
            .map(|(s, deps)| {
                format!(
                    "  {s} -> {}",
                    deps.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        panic!(
            "services import each other in a cycle: {}\nthe graph:\n{}",
            cycle.join(" -> "),
            edges.join("\n")
        );
    }
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(!files.is_empty(), "no sources found under src/");
    let over: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = fs::read_to_string(f).unwrap_or_default().lines().count();
            let shown = f.strip_prefix(src()).unwrap_or(f);
            (lines > MAX_LINES).then(|| format!("  src/{} ({lines} lines)", shown.display()))
        })
        .collect();
    assert!(
        over.is_empty(),
        "files over {MAX_LINES} lines; split them along their seams:\n{}",
        over.join("\n")
    );
}
