//! The library's top-level modules depend on each other one way only (issue 15): a cycle
//! means two modules can no longer be understood, tested or changed apart.
//!
//! Reads `src/**/*.rs` (the library; `main.rs` and `cli/` are the binary), collects every
//! `crate::X` and `super::…::X` that resolves to another top-level module, and fails naming
//! the modules of any cycle. Test code is left out: a `#[cfg(test)] mod x;` file and the rest
//! of a file from a `#[cfg(test)] mod x {` on (test modules are kept at the end of files) may
//! use anything, as a dev-dependency may.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/tail/mod.rs` → `[tail]`,
/// `src/config/validate.rs` → `[config, validate]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first names of the paths in `text` that start at the crate root: `crate::a::b`,
/// `crate::{a, b::c}`, and `super::` chains that climb to the root from `here`.
fn root_names(text: &str, here: &[String]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        if !text.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &text[i..];
        let prev_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (depth_left, after) = if prev_ok && rest.starts_with("crate::") {
            (Some(0usize), &rest["crate::".len()..])
        } else if prev_ok && rest.starts_with("super::") {
            let mut after = rest;
            let mut ups = 0;
            while let Some(a) = after.strip_prefix("super::") {
                ups += 1;
                after = a;
            }
            // Each `super` climbs one module; the root is reached after as many as `here` is deep.
            (here.len().checked_sub(ups), after)
        } else {
            i += 1;
            continue;
        };
        if depth_left == Some(0) {
            if let Some(group) = after.strip_prefix('{') {
                // Top-level items of the group: split on commas at brace depth 0.
                let mut depth = 0;
                let mut item_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && !c.is_whitespace() => {
                            item_start = false;
                            names.insert(ident_at(&group[j..]).to_string());
                        }
                        _ => {}
                    }
                }
            } else {
                names.insert(ident_at(after).to_string());
            }
        }
        i += rest.len() - after.len();
    }
    names
}

/// The library's code in `text`, without its test module.
fn non_test(text: &str, test_files: &mut BTreeSet<PathBuf>, dir: &Path) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("//") {
            continue;
        }
        if t == "#[cfg(test)]" {
            let next = lines.peek().map(|l| l.trim()).unwrap_or("");
            let item = next
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            if let Some(m) = item.strip_prefix("mod ") {
                if let Some(name) = m.strip_suffix(';') {
                    test_files.insert(dir.join(format!("{name}.rs")));
                    test_files.insert(dir.join(name));
                    continue;
                }
                break;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn library_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let top: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .chain(lib.lines().filter_map(|l| l.trim().strip_prefix("mod ")))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let mut test_files = BTreeSet::new();
    let mut graph = Graph::new();
    // Shallow files first: a parent declares its test-only children before they are reached.
    files.sort_by_key(|p| (p.components().count(), p.clone()));
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let path = module_path(rel);
        let Some(module) = path.first().filter(|m| top.contains(*m)) else {
            continue; // main.rs, lib.rs, the binary's cli/
        };
        // A test-only file, or a file inside a test-only folder module.
        if test_files.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        let dir = if rel.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let code = non_test(&text, &mut test_files, &dir);
        let edges = graph.entry(module.clone()).or_default();
        for name in root_names(&code, &path) {
            if top.contains(&name) && &name != module {
                edges.insert(name);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules on it, if there is one (depth-first search).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        graph: &'a Graph,
        node: &'a str,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(graph, node, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn library_modules_form_no_cycle() {
    let graph = library_graph();
    // The scan must see the pipeline's known edges, or it proves nothing.
    assert!(graph["tail"].contains("parse"), "{graph:#?}");
    assert!(graph["sink"].contains("batch"), "{graph:#?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between src/ modules: {}\n{graph:#?}",
            cycle.join(" → ")
        );
    }
    // The order docs/architecture.md shows (`--nocapture`): each module after all it uses.
    let mut placed: Vec<&str> = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<&str> = graph
            .iter()
            .filter(|(m, deps)| {
                !placed.contains(&m.as_str()) && deps.iter().all(|d| placed.contains(&d.as_str()))
            })
            .map(|(m, _)| m.as_str())
            .collect();
        println!("{}", layer.join(" "));
        placed.extend(layer);
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert!(find_cycle(&g).is_some());
    g.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&g), None);
}

#[test]
fn paths_are_read_as_the_compiler_reads_them() {
    let here = vec!["config".to_string(), "validate".to_string()];
    let names = root_names(
        "use crate::{ack::Tracker, kind};\nsuper::super::sink::x(); super::y(); crate::time::Date",
        &here,
    );
    let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["ack", "kind", "sink", "time"]);
}
