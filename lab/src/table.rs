//! Text and markdown tables, laid out by `comfy-table` (the lab's summaries,
//! reports and listings use these two shapes and no hand-padded columns).

use comfy_table::presets::{ASCII_MARKDOWN, NOTHING};
use comfy_table::{ContentArrangement, Table, TableComponent};

/// A plain text table: the header underlined with `-`, columns separated by
/// two spaces, no borders, no trailing blanks; every line indented by
/// `indent` spaces. Rows shorter than the header are padded with empty
/// cells. Never wrapped: a summary goes into files and CI logs as well as to
/// a terminal.
pub fn text<S: AsRef<str>>(indent: usize, header: &[S], rows: &[Vec<String>]) -> String {
    let mut t = Table::new();
    t.load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_style(TableComponent::HeaderLines, '-')
        .set_style(TableComponent::MiddleHeaderIntersections, ' ')
        .set_style(TableComponent::VerticalLines, ' ')
        .remove_style(TableComponent::LeftBorder)
        .remove_style(TableComponent::RightBorder)
        .remove_style(TableComponent::LeftHeaderIntersection)
        .remove_style(TableComponent::RightHeaderIntersection)
        .set_header(header.iter().map(AsRef::as_ref).collect::<Vec<&str>>());
    for r in rows {
        t.add_row(r.clone());
    }
    for c in t.column_iter_mut() {
        c.set_padding((0, 1));
    }
    let pad = " ".repeat(indent);
    t.lines()
        .map(|l| format!("{pad}{}\n", l.trim_end()))
        .collect()
}

/// A GitHub-flavoured markdown table (`| a | b |`, then `|---|---|`), its
/// columns padded to their widest cell. `|` inside a cell is escaped.
pub fn markdown<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| esc(h.as_ref())).collect::<Vec<_>>());
    for r in rows {
        t.add_row(r.iter().map(|c| esc(c)).collect::<Vec<_>>());
    }
    t.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_columns_without_borders() {
        let t = text(
            2,
            &["verdict", "canonical"],
            &[
                vec!["pass".into(), "3 100.0%".into()],
                vec!["innocent-kill".into(), "0".into()],
            ],
        );
        assert_eq!(
            t,
            "  verdict        canonical\n  -------------- ----------\n  pass           3 100.0%\n  innocent-kill  0\n"
        );
    }

    #[test]
    fn markdown_tables_have_a_separator_row_and_escape_pipes() {
        let t = markdown(&["a", "b"], &[vec!["x|y".into(), "1".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("| a"), "{t}");
        assert!(lines[1].starts_with("|-"), "{t}");
        assert!(lines[2].contains("x\\|y"), "{t}");
    }
}
