//! The module graph of `src/` has no circle: a module (a file, or a folder's
//! `mod.rs`) never reaches itself through what it uses, so each can be read
//! and changed knowing only what it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use crate::helpers::repo_path;

/// Module path ("chat::ws", "answer") -> its file's text, tests left out.
fn modules() -> BTreeMap<String, (bool, String)> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = repo_path("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let is_folder = parts.last().is_some_and(|p| p == "mod");
        if is_folder {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
        modules.insert(parts.join("::"), (is_folder, code));
    }
    modules
}

/// Each module's uses of other modules, resolved to the longest module
/// path they name.
fn graph(modules: &BTreeMap<String, (bool, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let comment = Regex::new(r"//[^\n]*").unwrap();
    let path = Regex::new(r"\b(crate|super)::([a-z_0-9]+(?:::[a-z_0-9]+)*)").unwrap();
    let group = Regex::new(r"\b(crate|super)::\{([^}]*)\}").unwrap();
    let resolve = |name: &str| {
        let parts: Vec<&str> = name.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, (is_folder, code)) in modules {
        let code = comment.replace_all(code, "");
        let mut own: Vec<&str> = module.split("::").collect();
        if !*is_folder {
            own.pop();
        }
        // `super` of a file is its folder's parent module; of a `mod.rs`,
        // the folder's parent.
        let parent = |kind: &str| -> String {
            if kind == "crate" {
                return String::new();
            }
            let mut up = own.clone();
            if *is_folder {
                up.pop();
            }
            up.join("::")
        };
        let join = |base: String, rest: &str| {
            if base.is_empty() {
                rest.to_string()
            } else {
                format!("{base}::{rest}")
            }
        };
        let mut names = Vec::new();
        for c in path.captures_iter(&code) {
            names.push(join(parent(&c[1]), &c[2]));
        }
        for c in group.captures_iter(&code) {
            for item in c[2].split(',') {
                let item = item.trim().split([' ', ':']).next().unwrap_or("");
                if item.starts_with(|ch: char| ch.is_ascii_lowercase()) {
                    names.push(join(parent(&c[1]), item));
                }
            }
        }
        let used: BTreeSet<String> = names
            .iter()
            .filter_map(|n| resolve(n))
            .filter(|m| m != module)
            .collect();
        graph.insert(module.clone(), used);
    }
    graph
}

/// A circle in the graph, if any (depth-first).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut found = stack[i..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_reaches_itself_through_what_it_uses() {
    let modules = modules();
    assert!(modules.contains_key("chat::ws") && modules.contains_key("storage"));
    let graph = graph(&modules);
    // The graph sees real uses (a check that finds nothing proves nothing).
    assert!(graph["chat::responder"].contains("state"));
    assert!(graph["answer::places"].contains("answer::data_file"));
    if let Some(found) = circle(&graph) {
        panic!("import circle: {}", found.join(" -> "));
    }
    // Folders as wholes too: `chat` uses `state`, which must not use `chat`.
    let mut folders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, used) in &graph {
        let top = module.split("::").next().unwrap().to_string();
        let entry = folders.entry(top.clone()).or_default();
        for u in used {
            let u = u.split("::").next().unwrap();
            if u != top {
                entry.insert(u.to_string());
            }
        }
    }
    if let Some(found) = circle(&folders) {
        panic!("import circle between folders: {}", found.join(" -> "));
    }
}
