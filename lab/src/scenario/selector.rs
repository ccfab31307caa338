//! [`Selector`]: which nodes of a tree a rule or a kill applies to.

use std::fmt;

/// A node selector: `root`, `leaves`, `interior`, `depth:N`, a path such as
/// `0.1`, or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// `*`: every node.
    All,
    /// `root`: the root (depth 0).
    Root,
    /// `leaves`: nodes without children.
    Leaves,
    /// `interior`: nodes with children.
    Interior,
    /// `depth:N`: nodes N levels below the root.
    Depth(u32),
    /// `0.1.0`: one node, by the index of each ancestor among its siblings.
    Path(Vec<u32>),
}

impl Selector {
    /// Parse a selector; `None` when `s` is none of the forms.
    pub fn parse(s: &str) -> Option<Selector> {
        match s {
            "*" => Some(Selector::All),
            "root" => Some(Selector::Root),
            "leaves" => Some(Selector::Leaves),
            "interior" => Some(Selector::Interior),
            _ => {
                if let Some(n) = s.strip_prefix("depth:") {
                    return index(n).map(Selector::Depth);
                }
                let parts: Option<Vec<u32>> = s.split('.').map(index).collect();
                parts.filter(|p| !p.is_empty()).map(Selector::Path)
            }
        }
    }

    /// Whether the selector names at least one node of a tree with these
    /// breadths per level (a path or depth outside the tree names none).
    pub fn fits(&self, shape: &[u32]) -> bool {
        match self {
            Selector::Depth(d) => *d as usize <= shape.len(),
            Selector::Path(p) => p.len() <= shape.len() && p.iter().zip(shape).all(|(i, b)| i < b),
            Selector::Interior => !shape.is_empty(),
            _ => true,
        }
    }

    /// Whether the node at `path` (empty for the root), with or without
    /// children, matches.
    pub fn matches(&self, path: &[u32], has_children: bool) -> bool {
        match self {
            Selector::All => true,
            Selector::Root => path.is_empty(),
            Selector::Leaves => !has_children,
            Selector::Interior => has_children,
            Selector::Depth(d) => path.len() == *d as usize,
            Selector::Path(p) => p == path,
        }
    }

    /// How specific the selector is: rules apply from the least specific up.
    pub fn specificity(&self) -> u8 {
        match self {
            Selector::All => 0,
            Selector::Leaves | Selector::Interior => 1,
            Selector::Depth(_) => 2,
            Selector::Root | Selector::Path(_) => 3,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => write!(f, "*"),
            Selector::Root => write!(f, "root"),
            Selector::Leaves => write!(f, "leaves"),
            Selector::Interior => write!(f, "interior"),
            Selector::Depth(d) => write!(f, "depth:{d}"),
            Selector::Path(p) => {
                let s: Vec<String> = p.iter().map(|i| i.to_string()).collect();
                write!(f, "{}", s.join("."))
            }
        }
    }
}

/// A canonical index: decimal digits, no sign, no leading zero.
fn index(s: &str) -> Option<u32> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}
