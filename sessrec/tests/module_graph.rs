//! The crate's modules import each other without a cycle: a module never imports a module
//! that imports it back, so each can be read, tested and changed from the leaves up.
//!
//! The graph is read from the sources: every `crate::a::…` path (in `use` lines, grouped
//! `use crate::{a, b}` lists and inline paths) outside comments is an edge to module `a`.
//! Every crate of the workspace is checked the same way at every level of nesting
//! (`transfer::sftp` against `transfer::event`, `sftp::handles` against `sftp::events`),
//! with `super::` and `self::` paths resolved too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Module name → the other modules of the crate it names.
fn module_graph(src: &Path) -> Graph {
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("dir entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let module = if path.is_dir() {
            // `a/mod.rs` or `a.rs` + `a/`: fold submodules into their parent for this check.
            let mut text = String::new();
            collect_dir(&path, &mut text);
            sources
                .entry(name.to_string())
                .or_insert_with(String::new)
                .push_str(&text);
            continue;
        } else if let Some(stem) = name.strip_suffix(".rs") {
            stem.to_string()
        } else {
            continue;
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        sources
            .entry(module)
            .or_insert_with(String::new)
            .push_str(&text);
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, text)| {
            let deps = crate_paths(text)
                .into_iter()
                .filter(|d| d != module && modules.contains(d))
                .collect();
            (module.clone(), deps)
        })
        .collect()
}

fn collect_dir(dir: &Path, text: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_dir(&path, text);
        } else if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&std::fs::read_to_string(&path).expect("read source"));
            text.push('\n');
        }
    }
}

/// The first segment of every `crate::` path in code (comment lines are skipped).
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::X, b, c::{self, Y}}`: the names at the group's top level.
                let mut depth = 0usize;
                let mut at_item_start = true;
                let mut ident = String::new();
                for ch in group.chars() {
                    if ch.is_alphanumeric() || ch == '_' {
                        if at_item_start && depth == 0 {
                            ident.push(ch);
                        }
                        continue;
                    }
                    if !ident.is_empty() {
                        found.insert(std::mem::take(&mut ident));
                        at_item_start = false;
                    }
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => at_item_start = true,
                        _ => {}
                    }
                }
            } else {
                let ident: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !ident.is_empty() {
                    found.insert(ident);
                }
            }
        }
    }
    found
}

/// A cycle in the graph, as the modules along it (first repeated at the end), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        graph: &Graph,
        node: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|m| m == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(graph, node, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn module_imports_are_acyclic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(graph.contains_key("cli") && graph.contains_key("context"));
    assert!(
        graph["cli"].contains("list") && graph["list"].contains("context"),
        "the parser sees the imports it must: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_shared_context_imports_no_subcommand() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let subcommands = [
        "list", "show", "play", "export", "verify", "search", "kill", "prune", "doctor",
    ];
    for leaf in ["context", "output"] {
        let named: Vec<_> = graph[leaf]
            .iter()
            .filter(|m| subcommands.contains(&m.as_str()))
            .collect();
        assert!(named.is_empty(), "{leaf} imports subcommands {named:?}");
    }
}

#[test]
fn parser_reads_grouped_inline_and_skips_comments() {
    let text = "use crate::{a::{self, X}, b, c::Y};\n\
                let z = crate::d::f();\n\
                // crate::e::g() in a comment\n\
                /// [`crate::h`] in a doc comment\n";
    let found: Vec<_> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "d"]);
    let mut graph = Graph::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    graph.get_mut("c").unwrap().insert("a".into());
    assert_eq!(
        find_cycle(&graph).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".to_string())
    );
}

/// The crates of the workspace checked module by module, at every level of nesting.
const CRATES: &[&str] = &[
    "sessrec-core",
    "sessrec-shell",
    "pam_sessrec",
    "sudo-iolog-import",
    "sessrec",
];

/// A module's path from the crate root (`["transfer", "sftp"]`); the root is `[]`.
type ModPath = Vec<String>;

/// Every module of a crate (its files: `a.rs`, `a/mod.rs`, `a/b.rs`) with its code, comment
/// lines left out.
fn crate_modules(src: &Path) -> BTreeMap<ModPath, String> {
    fn walk(dir: &Path, at: &[String], out: &mut BTreeMap<ModPath, String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let mut module = at.to_vec();
            if path.is_dir() {
                module.push(name.to_string());
                walk(&path, &module, out);
                continue;
            }
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            if !(at.is_empty() && (stem == "lib" || stem == "main")) && stem != "mod" {
                module.push(stem.to_string());
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .flat_map(|l| [l, "\n"])
                .collect();
            out.entry(module).or_default().push_str(&code);
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths a use tree or inline path starting at `text` names (`a::{b, c::{self, D}}` gives
/// `a::b`, `a::c`, `a::c::D`), as segments.
fn use_tree(text: &str) -> Vec<Vec<String>> {
    fn tree(text: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut at = 0;
        let mut path = prefix.to_vec();
        loop {
            let rest = &text[at..];
            let skipped = rest.len() - rest.trim_start().len();
            at += skipped;
            let rest = &text[at..];
            if let Some(group) = rest.strip_prefix('{') {
                at += 1;
                let mut inner = group;
                loop {
                    let used = tree(inner, &path, out);
                    at += used;
                    inner = &text[at..];
                    let trimmed = inner.trim_start();
                    at += inner.len() - trimmed.len();
                    if let Some(next) = trimmed.strip_prefix(',') {
                        at += 1;
                        inner = next;
                        if next.trim_start().starts_with('}') {
                            let t = next.trim_start();
                            at += next.len() - t.len() + 1;
                            return at;
                        }
                    } else {
                        if trimmed.starts_with('}') {
                            at += 1;
                        }
                        return at;
                    }
                }
            }
            let ident: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if ident.is_empty() {
                if path.len() > prefix.len() {
                    out.push(path);
                }
                return at;
            }
            at += ident.len();
            if ident != "self" {
                path.push(ident);
            }
            match text[at..].strip_prefix("::") {
                Some(_) => at += 2,
                None => {
                    out.push(path);
                    return at;
                }
            }
        }
    }
    let mut out = Vec::new();
    tree(text, &[], &mut out);
    out
}

/// The modules `module`'s code names, resolved to paths from the crate root: `crate::…`,
/// `super::…`, `self::…` and paths starting with one of its own submodules.
fn referenced(module: &ModPath, code: &str, modules: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    let children: BTreeSet<&str> = modules
        .iter()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .map(|m| m[module.len()].as_str())
        .collect();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let Some(start) = rest.find(|c: char| is_ident(c)) else {
            break;
        };
        let before = code[..at + start].chars().next_back();
        let word: String = rest[start..].chars().take_while(|c| is_ident(*c)).collect();
        let after = at + start + word.len();
        at = after;
        if before.is_some_and(|c| c == ':' || is_ident(c)) || !code[after..].starts_with("::") {
            continue;
        }
        let mut base: ModPath = match word.as_str() {
            "crate" => Vec::new(),
            "self" => module.clone(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            w if children.contains(w) => {
                let mut m = module.clone();
                m.push(w.to_string());
                m
            }
            _ => continue,
        };
        let mut tail = &code[after + 2..];
        while let Some(rest) = tail.strip_prefix("super::") {
            base.pop();
            tail = rest;
        }
        let mut paths = use_tree(tail);
        if paths.is_empty() {
            paths.push(Vec::new());
        }
        for path in paths {
            let mut full = base.clone();
            full.extend(path);
            // The longest prefix that is a module: the rest names an item in it.
            while !full.is_empty() && !modules.contains(&full) {
                full.pop();
            }
            found.insert(full);
        }
    }
    found.remove(module);
    found
}

/// For every module with submodules: its submodules as a graph, each with everything below it
/// folded in, an edge where one names the other. A child naming its parent (items the parent
/// re-exports) is no edge of that graph.
fn sibling_graphs(sources: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, Graph> {
    let modules: BTreeSet<ModPath> = sources.keys().cloned().collect();
    let mut graphs: BTreeMap<ModPath, Graph> = BTreeMap::new();
    for (module, code) in sources {
        for target in referenced(module, code, &modules) {
            // The level where the two part: their common parent, and the child of it on each side.
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common >= module.len() || common >= target.len() {
                continue; // an ancestor or a descendant
            }
            graphs
                .entry(module[..common].to_vec())
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    graphs
}

#[test]
fn no_module_of_any_crate_imports_a_module_that_imports_it_back() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    let mut cycles = Vec::new();
    for krate in CRATES {
        let graphs = sibling_graphs(&crate_modules(&workspace.join(krate).join("src")));
        assert!(graphs.contains_key(&Vec::new()), "{krate}: no modules read");
        if *krate == "sessrec-shell" {
            let edge = |parent: &[&str], from: &str, to: &str| {
                let parent: ModPath = parent.iter().map(|s| s.to_string()).collect();
                graphs
                    .get(&parent)
                    .and_then(|g| g.get(from))
                    .is_some_and(|deps| deps.contains(to))
            };
            assert!(
                edge(&[], "channel", "relay")
                    && edge(&["transfer"], "sftp", "event")
                    && edge(&["transfer", "sftp"], "handles", "events"),
                "the parser sees the imports it must: {graphs:?}"
            );
        }
        for (parent, graph) in &graphs {
            if let Some(cycle) = find_cycle(graph) {
                let at = if parent.is_empty() {
                    String::new()
                } else {
                    format!("{}::", parent.join("::"))
                };
                let cycle: Vec<String> = cycle.iter().map(|m| format!("{at}{m}")).collect();
                cycles.push(format!("{krate}: {}", cycle.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "module import cycles:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn nested_paths_resolve_to_modules_and_a_cycle_between_submodules_is_found() {
    let module = |p: &str| -> ModPath {
        p.split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let sources: BTreeMap<ModPath, String> = [
        ("", "mod a; mod b;"),
        ("a", "mod x; mod y; pub use x::Thing;"),
        ("a::x", "use super::y::Other; pub struct Thing;"),
        (
            "a::y",
            "use crate::{a::x::{self, Thing}, b};\nfn f() { b::g() }",
        ),
        ("b", "pub fn g() {}"),
    ]
    .into_iter()
    .map(|(m, code)| (module(m), code.to_string()))
    .collect();
    let modules: BTreeSet<ModPath> = sources.keys().cloned().collect();
    assert_eq!(
        referenced(&module("a::y"), &sources[&module("a::y")], &modules),
        [module("a::x"), module("b")].into()
    );
    // A child naming its parent's re-export (`super::Thing`) would be no edge.
    assert_eq!(
        referenced(&module("a::x"), &sources[&module("a::x")], &modules),
        [module("a::y")].into()
    );
    let graphs = sibling_graphs(&sources);
    assert_eq!(
        find_cycle(&graphs[&module("a")]).map(|c| c.join(" -> ")),
        Some("x -> y -> x".to_string())
    );
    assert_eq!(find_cycle(&graphs[&module("")]), None, "{graphs:?}");
    assert_eq!(
        use_tree("a::{b, c::{self, D}, e}::f"),
        [
            vec!["a".to_string(), "b".into()],
            vec!["a".into(), "c".into()],
            vec!["a".into(), "c".into(), "D".into()],
            vec!["a".into(), "e".into()],
        ]
    );
}
