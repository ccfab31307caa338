//! `lab strategies`: the strategy presets and their axes.

use super::{print_report, Format};
use crate::error::{Exit, LabError};
use crate::strategy::{Strategy, AUTOKILL, AUTOKILL_ABOUT, PRESETS};

/// `lab strategies`' arguments as given.
#[derive(clap::Args)]
pub(super) struct StrategiesCmd {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The axis syntax, as `lab strategies` explains it.
const AXES: &str = "create=..,death=..,observe=..[,guards=on|off]";
/// What the axis syntax does.
const AXES_ABOUT: &str = "any axes; guards default to on exactly with canonical's axes";

/// One preset, as `--format json` prints it (the axes named as the
/// axis syntax and the CSV write them: `observe` is `proc`, not `pid`).
#[derive(serde::Serialize)]
struct Preset {
    name: &'static str,
    create: &'static str,
    death: &'static str,
    observe: &'static str,
    guards: bool,
    about: &'static str,
}

/// The optional `autokill` preset.
#[derive(serde::Serialize)]
struct Autokill {
    name: &'static str,
    /// Whether this kernel has `CLONE_PIDFD_AUTOKILL`.
    available: bool,
    about: &'static str,
}

/// What `lab strategies` prints.
#[derive(serde::Serialize)]
struct Strategies {
    presets: Vec<Preset>,
    autokill: Autokill,
    /// The syntax of a strategy of any axes, and what it does.
    axes: &'static str,
    axes_about: &'static str,
}

impl StrategiesCmd {
    /// Print each preset's axes and guards switch, and the axis syntax.
    pub(super) fn execute(self) -> Result<Exit, LabError> {
        let all = Strategies {
            presets: PRESETS
                .iter()
                .map(|&(name, create, death, observe, about)| Preset {
                    name,
                    create: create.name(),
                    death: death.name(),
                    observe: observe.name(),
                    guards: Strategy::canonical_axes(create, death, observe),
                    about,
                })
                .collect(),
            autokill: Autokill {
                name: AUTOKILL,
                available: lifeline::probe::autokill_supported(),
                about: AUTOKILL_ABOUT,
            },
            axes: AXES,
            axes_about: AXES_ABOUT,
        };
        print_report(self.format, &all, || render(&all));
        Ok(Exit::Clean)
    }
}

/// The text of `lab strategies`: a table (comfy-table), one row a preset
/// (its axes, guards and what it is for), then `autokill` and the axes.
fn render(all: &Strategies) -> String {
    let mut rows: Vec<Vec<String>> = all
        .presets
        .iter()
        .map(|p| {
            vec![
                p.name.to_string(),
                p.create.to_string(),
                p.death.to_string(),
                p.observe.to_string(),
                if p.guards { "on" } else { "off" }.to_string(),
                p.about.to_string(),
            ]
        })
        .collect();
    let a = &all.autokill;
    let have = if a.available {
        "available here"
    } else {
        "not on this kernel"
    };
    rows.push(vec![
        a.name.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        format!("({have}) {}", a.about),
    ]);
    let mut s = crate::table::text(
        0,
        &["strategy", "create", "death", "observe", "guards", "about"],
        &rows,
    );
    s.push_str(&format!("\naxes: {}  {}\n", all.axes, all.axes_about));
    s
}
