//! Text tables, laid out by `comfy-table`: the A/B tables of `lab run` and
//! `lab soak`, `lab strategies`, `lab suite`. (The markdown tables of
//! `lab report` stay hand-written, see `analysis/report.rs`: they align
//! numeric columns right, which comfy-table's markdown preset cannot say.)

use comfy_table::presets::NOTHING;
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
}
