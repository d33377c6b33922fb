//! The comparison plot (SVG): deliveries per second and p99 latency against
//! offered load, for one-to-one chat and group chat, one line per server.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::report::{Getter, RunRecords};

const COLOURS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Points (offered messages/s, y) of every server; steps with a zero value
/// are left out (they cannot go on a log scale).
fn series(run: &RunRecords, get: Getter, p99: bool) -> Series {
    run.servers
        .iter()
        .filter_map(|s| {
            let sat = get(run, s)?;
            let pts = sat
                .steps
                .iter()
                .map(|st| {
                    let y = if p99 {
                        st.latency.p99_ms
                    } else {
                        st.deliveries_per_s
                    };
                    (st.offered_per_s, y)
                })
                .filter(|&(x, y)| x > 0.0 && y > 0.0)
                .collect::<Vec<_>>();
            Some((s.clone(), pts))
        })
        .collect()
}

fn bounds(series: &Series) -> Option<((f64, f64), (f64, f64))> {
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if pts.is_empty() {
        return None;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    Some(((x0 / 1.5, x1 * 1.5), (y0 / 1.5, y1 * 1.5)))
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    data: &Series,
    limit_line: Option<f64>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {title}: {e:?}");
    let Some(((x0, x1), (mut y0, mut y1))) = bounds(data) else {
        area.titled(&format!("{title}: no data"), ("sans-serif", 18))
            .map_err(err)?;
        return Ok(());
    };
    if let Some(l) = limit_line {
        y0 = y0.min(l / 1.5);
        y1 = y1.max(l * 1.5);
    }
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("offered load, messages sent per second")
        .y_desc(y_label)
        .draw()
        .map_err(err)?;
    if let Some(l) = limit_line {
        chart
            .draw_series(LineSeries::new(vec![(x0, l), (x1, l)], BLACK.mix(0.4)))
            .map_err(err)?
            .label(format!("{l} ms limit"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.4)));
    }
    for (i, (name, pts)) in data.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Writes the 2×2 SVG plot to `path`.
pub fn write_svg(run: &RunRecords, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("drawing: {e:?}"))?;
    let areas = root.split_evenly((2, 2));
    let chat = RunRecords::chat as Getter;
    let muc = RunRecords::muc as Getter;
    let panels: [(&str, &str, Series, Option<f64>); 4] = [
        (
            "One-to-one chat: deliveries/s",
            "deliveries per second",
            series(run, chat, false),
            None,
        ),
        (
            "One-to-one chat: p99 latency",
            "p99 latency, ms",
            series(run, chat, true),
            Some(100.0),
        ),
        (
            "Group chat: deliveries/s",
            "deliveries per second",
            series(run, muc, false),
            None,
        ),
        (
            "Group chat: p99 latency",
            "p99 latency, ms",
            series(run, muc, true),
            Some(100.0),
        ),
    ];
    for (area, (title, y, data, limit)) in areas.iter().zip(panels.iter()) {
        panel(area, title, y, data, *limit)?;
    }
    root.present()
        .map_err(|e| anyhow!("writing {}: {e:?}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Outcome, Record};
    use crate::saturate::{failed_step, Saturation};

    #[test]
    fn writes_an_svg_with_every_server() {
        let mut steps = Vec::new();
        for (k, rate) in [1.0, 2.0, 4.0].into_iter().enumerate() {
            let mut s = failed_step(10, rate, String::new());
            s.deliveries_per_s = 100.0 * (k as f64 + 1.0);
            s.latency.p99_ms = 5.0 * (k as f64 + 1.0);
            s.sustained = true;
            steps.push(s);
        }
        let run = RunRecords::new(vec![
            Record {
                server: "conclave".into(),
                outcome: Outcome::Muc(Saturation::from_steps("x".into(), steps.clone())),
            },
            Record {
                server: "prosody".into(),
                outcome: Outcome::Muc(Saturation::from_steps("x".into(), steps)),
            },
        ]);
        let dir = std::env::temp_dir().join(format!("conclave-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        write_svg(&run, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("prosody") && svg.contains("conclave"));
        assert!(svg.contains("Group chat: p99 latency"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
