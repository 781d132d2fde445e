//! The module graph of every crate in the workspace has no cycle.
//!
//! Each `.rs` file is a module; an edge `a → b` is a path in `a` (outside its `#[cfg(test)]`
//! module, as `cargo modules dependencies` counts by default) that names an item of `b`:
//! `crate::b::…`, `super::…`, `self::…` and paths through a child module declared in `a`.
//! A path to a name that a module re-exports (`pub use b::Name`) counts as a path to `b`; a
//! `mod b;` declaration alone is no edge. Run with `-- --nocapture` to see the counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// A crate's source: each module's code (strings, comments and test modules removed).
struct Crate {
    modules: BTreeMap<Module, String>,
}

impl Crate {
    fn load(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = inline_super(&strip_tests(&strip(&text)));
                    modules.insert(module_of(src, &path), code);
                }
            }
        }
        Self { modules }
    }

    /// The module that `path` (absolute segments) names: its longest module prefix, or, where
    /// the next segment is a name that module re-exports, the module it comes from.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Module> {
        let n = (0..=path.len())
            .rev()
            .find(|&n| self.modules.contains_key(&path[..n]))?;
        let module = path[..n].to_vec();
        if depth < 4
            && let Some(name) = path.get(n)
            && let Some(source) = self.reexports(&module).get(name)
        {
            return self.resolve(source, depth + 1).or(Some(module));
        }
        Some(module)
    }

    /// `pub use` items of `module`: name → absolute path.
    fn reexports(&self, module: &Module) -> BTreeMap<String, Module> {
        let code = &self.modules[module];
        let mut out = BTreeMap::new();
        let mut rest = code.as_str();
        while let Some(i) = rest.find("pub use ") {
            rest = &rest[i + 8..];
            let end = rest.find(';').unwrap_or(rest.len());
            for leaf in use_tree(&rest[..end]) {
                if let Some(abs) = absolute(module, &self.children(module), &leaf)
                    && let Some(name) = leaf.last()
                {
                    out.insert(name.clone(), abs);
                }
            }
        }
        out
    }

    fn children(&self, module: &Module) -> BTreeSet<String> {
        self.modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m.last().unwrap().clone())
            .collect()
    }

    /// Every module's dependencies on other modules of the crate.
    fn edges(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges = BTreeMap::new();
        for (module, code) in &self.modules {
            let children = self.children(module);
            let mut to = BTreeSet::new();
            for path in paths(code, &children) {
                if let Some(abs) = absolute(module, &children, &path)
                    && let Some(target) = self.resolve(&abs, 0)
                    && &target != module
                {
                    to.insert(target);
                }
            }
            edges.insert(module.clone(), to);
        }
        edges
    }
}

/// The module path of a file under `src`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !["mod", "lib", "main"].contains(&stem) {
        parts.push(stem.to_string());
    }
    parts
}

/// The code without comments, with every string and char literal emptied.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(b.get(i.wrapping_sub(1)))
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && b.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            let mut j = i + 2;
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The code without its `#[cfg(test)] mod NAME { … }` blocks.
fn strip_tests(code: &str) -> String {
    let mut out = code.to_string();
    while let Some(at) = out.find("#[cfg(test)]") {
        let after = &out[at + 12..];
        let trimmed = after.trim_start();
        let is_mod = ["mod ", "pub mod ", "pub(crate) mod "]
            .iter()
            .any(|p| trimmed.starts_with(p));
        let Some(open) = after.find('{').filter(|_| is_mod) else {
            out.replace_range(at..at + 12, "");
            continue;
        };
        let end = matching_brace(&out, at + 12 + open) + 1;
        out.replace_range(at..end, "");
    }
    out
}

/// The index of the `}` that closes the `{` at `open` (the end of `code` if none does).
fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (k, ch) in code[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + k;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The code with `super::` inside an inline `mod NAME { … }` written as `self::`: there it
/// names the file's own module.
fn inline_super(code: &str) -> String {
    let mut out = code.to_string();
    let mut from = 0;
    while let Some(i) = out[from..].find("mod ") {
        let at = from + i;
        from = at + 4;
        let word_start = at == 0 || !ident_char(out[..at].chars().last().as_ref());
        let rest = &out[at + 4..];
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(0);
        if !word_start || name_len == 0 || !rest[name_len..].trim_start().starts_with('{') {
            continue;
        }
        let open = at + 4 + name_len + rest[name_len..].find('{').unwrap();
        let end = matching_brace(&out, open);
        let inner = out[open..end].replace("super::", "self::");
        out.replace_range(open..end, &inner);
    }
    out
}

/// The leaf paths of a `use` tree (`a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`).
fn use_tree(text: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(text);
    let mut pos = 0;
    tree(&tokens, &mut pos, Vec::new())
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if c == ':' && chars.get(i + 1) == Some(&':') {
                tokens.push("::".into());
                i += 1;
            } else if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        }
        i += 1;
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

fn tree(tokens: &[String], pos: &mut usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut path = prefix;
    loop {
        match tokens.get(*pos).map(String::as_str) {
            Some("{") => {
                *pos += 1;
                let mut out = Vec::new();
                loop {
                    match tokens.get(*pos).map(String::as_str) {
                        Some("}") => {
                            *pos += 1;
                            return out;
                        }
                        Some(",") => *pos += 1,
                        None => return out,
                        _ => out.extend(tree(tokens, pos, path.clone())),
                    }
                }
            }
            Some("*") => {
                *pos += 1;
                return vec![path];
            }
            Some(word) if word.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                if word != "self" || path.is_empty() {
                    path.push(word.to_string());
                }
                *pos += 1;
                if tokens.get(*pos).map(String::as_str) == Some("::") {
                    *pos += 1;
                } else {
                    // `as alias` and anything else end the path.
                    while let Some(t) = tokens.get(*pos)
                        && t != ","
                        && t != "}"
                    {
                        *pos += 1;
                    }
                    return vec![path];
                }
            }
            _ => return vec![path],
        }
    }
}

/// Every path in `code` that starts with `crate`, `super`, `self` or a child module's name.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let tokens = tokenize(code);
    let mut out = Vec::new();
    for i in 0..tokens.len() {
        let t = tokens[i].as_str();
        let starts = t == "crate" || t == "super" || t == "self" || children.contains(t);
        let after_sep = i > 0 && tokens[i - 1] == "::";
        if starts && !after_sep && tokens.get(i + 1).map(String::as_str) == Some("::") {
            let mut pos = i;
            out.extend(tree(&tokens, &mut pos, Vec::new()));
        }
    }
    out
}

/// `path` as seen from `module` made absolute (from the crate root); `None` for other crates.
fn absolute(module: &Module, children: &BTreeSet<String>, path: &[String]) -> Option<Module> {
    let first = path.first()?;
    let mut abs = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut m = module.clone();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                m.pop();
                rest = &rest[1..];
            }
            m.extend(rest.iter().cloned());
            return Some(m);
        }
        name if children.contains(name) => {
            let mut m = module.clone();
            m.push(name.to_string());
            m.extend(path[1..].iter().cloned());
            return Some(m);
        }
        _ => return None,
    };
    abs.extend(path[1..].iter().cloned());
    Some(abs)
}

/// A cycle of `edges`, if there is one.
fn find_cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        m: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        marks.insert(m.clone(), Mark::Open);
        stack.push(m.clone());
        for next in edges.get(m).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|s| s == next).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, edges, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(m.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in edges.keys() {
        if marks.get(m).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(m, edges, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_crate_has_a_module_cycle() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![("raceloop".to_string(), root.join("src"))];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = format!("raceloop-{}", dir.file_name().unwrap().to_string_lossy());
        sources.push((name, dir.join("src")));
    }
    for (crate_name, src) in sources {
        let krate = Crate::load(&src);
        let edges = krate.edges();
        let count: usize = edges.values().map(BTreeSet::len).sum();
        println!(
            "{crate_name}: {} modules, {count} edges, no cycle",
            edges.len()
        );
        if let Some(cycle) = find_cycle(&edges) {
            let path: Vec<String> = cycle.iter().map(name).collect();
            panic!("{crate_name} has a module cycle: {}", path.join(" → "));
        }
        assert!(
            count > 0 || edges.len() == 1,
            "{crate_name}: no edge found, the scan is broken"
        );
    }
}

/// The checker sees the kinds of paths it claims to, and reports a cycle where there is one.
#[test]
fn the_checker_finds_edges_and_cycles() {
    let dir = std::env::temp_dir().join(format!("raceloop-modgraph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    let files = [
        ("main.rs", "mod a;\nmod b;\nfn main() { a::run(); }\n"),
        (
            "a/mod.rs",
            "mod inner;\npub use inner::Thing;\npub fn run() { let s = \"crate::b::x\"; }\n\
             mod nested { fn f() { super::run(); } }\n",
        ),
        (
            "a/inner.rs",
            "use crate::b::{self, Other as O};\npub struct Thing;\n",
        ),
        (
            "b.rs",
            "// crate::a::ignored\npub struct Other;\n#[cfg(test)]\nmod tests { use crate::a::run; }\n",
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let edges = Crate::load(&dir).edges();
    let m = |s: &str| -> Module {
        s.split("::")
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(edges[&m("")], [m("a")].into());
    assert_eq!(edges[&m("a")], [m("a::inner")].into());
    assert_eq!(edges[&m("a::inner")], [m("b")].into());
    assert!(edges[&m("b")].is_empty(), "{:?}", edges[&m("b")]);
    assert!(find_cycle(&edges).is_none());
    // A path from b to a's re-export of `inner::Thing` closes a cycle through a::inner.
    std::fs::write(dir.join("b.rs"), "pub struct Other(crate::a::Thing);\n").unwrap();
    let cycle = find_cycle(&Crate::load(&dir).edges()).expect("a cycle");
    let names: Vec<String> = cycle.iter().map(name).collect();
    assert!(
        names.contains(&"a::inner".to_string()) && names.contains(&"b".to_string()),
        "{names:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Prints the module graph of `RACELOOP_SRC` (a crate's `src` folder, default the app's) and
/// its cycle groups: `-- --nocapture` shows it.
#[test]
fn print_module_graph() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = std::env::var("RACELOOP_SRC").unwrap_or_else(|_| "src".into());
    let edges = Crate::load(&root.join(src)).edges();
    for (m, to) in &edges {
        println!(
            "{} -> {}",
            name(m),
            to.iter().map(name).collect::<Vec<_>>().join(", ")
        );
    }
    // Strongly connected groups: modules that reach each other.
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for n in edges.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> =
        edges.keys().map(|m| (m, reach(m))).collect();
    let mut groups = BTreeSet::new();
    for m in edges.keys() {
        let group: Vec<String> = edges
            .keys()
            .filter(|n| reaches[m].contains(*n) && reaches[*n].contains(m))
            .map(name)
            .collect();
        if group.len() > 1 && groups.insert(group.clone()) {
            println!("cycle group of {}: {}", group.len(), group.join(", "));
        }
    }
}
