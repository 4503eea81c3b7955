//! The crate's modules import each other without a cycle: a module never imports a module
//! that imports it back, so each can be read, tested and changed from the leaves up.
//!
//! The graph is read from the sources: every `crate::a::…` path (in `use` lines, grouped
//! `use crate::{a, b}` lists and inline paths) outside comments is an edge to module `a`.

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
