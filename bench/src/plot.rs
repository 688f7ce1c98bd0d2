//! `--plot FILE.svg`: the figures drawn for a person, readable without the
//! JSON. plotters with its SVG backend only: text goes into the SVG as
//! `<text>` elements and the viewer lays it out, so no font library is
//! linked (plotters sizes labels with a crude estimate, enough for layout).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::latency::SizeRun;
use crate::stats::{cdf, Summary};
use crate::throughput::Point;

/// Height of the title and machine caption above the panels, px.
const HEADER_PX: u32 = 70;
const PANEL_W_PX: u32 = 520;
const PANEL_H_PX: u32 = 360;
const FONT: &str = "sans-serif";

/// The three series of a latency panel, in legend order.
const TAILGUARD: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const WRITE_READ: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const READ: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
/// One colour per batch size on the throughput chart (cycled).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("--plot {}: {e}", path.display())
}

/// Latency CDFs, one panel per record size, x on a log scale: tailguard
/// commit vs raw WRITE+READ vs raw READ on the same QP.
pub(crate) fn latency_svg(path: &Path, runs: &[SizeRun], caption: &str) -> Result<(), String> {
    let e = err(path);
    let n = runs.len().max(1);
    let cols = match n {
        1 => 1,
        2 | 4 => 2,
        _ => 3,
    };
    let rows = n.div_ceil(cols);
    let size = (
        PANEL_W_PX * cols as u32,
        HEADER_PX + PANEL_H_PX * rows as u32,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, body) = root.split_vertically(HEADER_PX);
    draw_header(
        &top,
        "tailguard commit latency vs the raw RDMA link (CDF, same QP, same run)",
        caption,
    )
    .map_err(|x| e(&x))?;
    for (r, area) in runs.iter().zip(body.split_evenly((rows, cols))) {
        latency_panel(&area, r).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_header(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    caption: &str,
) -> DrawResult {
    area.draw(&Text::new(
        title.to_owned(),
        (12, 10),
        (FONT, 22).into_font().color(&BLACK),
    ))?;
    area.draw(&Text::new(
        caption.to_owned(),
        (12, 42),
        (FONT, 14).into_font().color(&RGBColor(0x44, 0x44, 0x44)),
    ))
}

/// Height of the legend under each chart, px per entry.
const LEGEND_ROW_PX: u32 = 18;

/// A label for a point on a log10 axis: the value itself, 3 significant
/// digits (log-scale axes are drawn as linear axes over log10 of the value,
/// so every tick gets a label, not only the decades).
fn log_label(v: f64) -> String {
    let x = 10f64.powf(v);
    match x {
        x if x >= 100.0 => format!("{x:.0}"),
        x if x >= 10.0 => format!("{x:.1}"),
        x if x >= 1.0 => format!("{x:.2}"),
        x => format!("{x:.3}"),
    }
}

/// Splits `area` into a chart and a legend of `rows` entries below it.
fn with_legend<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    rows: usize,
) -> (
    DrawingArea<SVGBackend<'a>, Shift>,
    DrawingArea<SVGBackend<'a>, Shift>,
) {
    let (_, h) = area.dim_in_pixel();
    area.split_vertically(h.saturating_sub(LEGEND_ROW_PX * rows as u32 + 8))
}

/// The legend under a chart: a coloured stroke and its label per row, kept
/// out of the plot so it never hides a curve.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, entries: &[(String, RGBColor)]) -> DrawResult {
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = 6 + LEGEND_ROW_PX as i32 * i as i32 + LEGEND_ROW_PX as i32 / 2;
        area.draw(&PathElement::new(
            vec![(70, y), (95, y)],
            colour.stroke_width(2),
        ))?;
        area.draw(&Text::new(
            label.clone(),
            (102, y - 6),
            (FONT, 13).into_font().color(&BLACK),
        ))?;
    }
    Ok(())
}

fn latency_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, r: &SizeRun) -> DrawResult {
    let series = [
        ("tailguard commit", &r.tailguard, TAILGUARD),
        ("raw WRITE+READ", &r.write_read, WRITE_READ),
        ("raw READ", &r.read, READ),
    ];
    let lo = series.iter().map(|s| s.1.min()).min().unwrap_or(1).max(1);
    let hi = series
        .iter()
        .map(|s| s.1.max())
        .max()
        .unwrap_or(2)
        .max(lo + 1);
    // log10 of µs, padded so the first and last steps are visible.
    let (lo_x, hi_x) = (
        (lo as f64 / 1000.0).log10() - 0.05,
        (hi as f64 / 1000.0).log10() + 0.05,
    );
    let (chart_area, legend_area) = with_legend(area, series.len());
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(
            format!("{} B records ({} B on the wire)", r.size, r.wire_len),
            (FONT, 16),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(lo_x..hi_x, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs, log scale)")
        .y_desc("fraction of operations ≤ latency")
        .x_labels(7)
        .y_labels(6)
        .x_label_formatter(&|v| log_label(*v))
        .draw()?;
    let mut entries = Vec::new();
    for (name, h, colour) in series {
        let s = Summary::of(h);
        let points = cdf(h).into_iter().map(|(us, q)| (us.max(1e-3).log10(), q));
        chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        entries.push((
            format!(
                "{name}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                s.p50_ns as f64 / 1000.0,
                s.p99_ns as f64 / 1000.0,
                s.max_ns as f64 / 1000.0
            ),
            colour,
        ));
    }
    legend(&legend_area, &entries)
}

/// Commits/s against appender threads, one line per batch size, and MB/s
/// (log scale) with the raw WRITE bandwidth of the link drawn across.
pub(crate) fn throughput_svg(
    path: &Path,
    points: &[Point],
    raw_mb_s: f64,
    size_bytes: u32,
    caption: &str,
) -> Result<(), String> {
    let e = err(path);
    let mut batches: Vec<usize> = points.iter().map(|p| p.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    let legend_px = LEGEND_ROW_PX * (batches.len() as u32 + 1) + 8;
    let root = SVGBackend::new(
        path,
        (2 * PANEL_W_PX + 80, HEADER_PX + PANEL_H_PX + legend_px),
    )
    .into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (top, body) = root.split_vertically(HEADER_PX);
    draw_header(
        &top,
        &format!(
            "tailguard commit throughput, {size_bytes}-byte records, vs the raw WRITE bandwidth"
        ),
        caption,
    )
    .map_err(|x| e(&x))?;
    let (charts, legend_area) = body.split_vertically(PANEL_H_PX);
    let (left, right) = charts.split_horizontally(PANEL_W_PX + 40);
    throughput_panel(&left, points, &batches, None).map_err(|x| e(&x))?;
    throughput_panel(&right, points, &batches, Some(raw_mb_s)).map_err(|x| e(&x))?;
    let mut entries: Vec<(String, RGBColor)> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            (
                format!("batch {b} (records per commit)"),
                PALETTE[i % PALETTE.len()],
            )
        })
        .collect();
    entries.push((
        format!("raw WRITE bandwidth of the link: {raw_mb_s:.1} MB/s (128 KiB WRITE+READ on the same QP)"),
        BLACK,
    ));
    legend(&legend_area, &entries).map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// Left: commits/s, linear. Right (`raw_mb_s` given): MB/s on a log
/// scale, since commits of small records move a tiny share of the link.
fn throughput_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    points: &[Point],
    batches: &[usize],
    raw_mb_s: Option<f64>,
) -> DrawResult {
    let max_threads = points.iter().map(|p| p.threads).max().unwrap_or(1).max(2);
    let x_range = 0.5..max_threads as f64 + 0.5;
    let y_of = |p: &Point| match raw_mb_s {
        None => p.commits_per_s(),
        Some(_) => p.mb_per_s().max(1e-6).log10(),
    };
    let (y_range, y_desc, title) = match raw_mb_s {
        None => {
            let top = points.iter().map(Point::commits_per_s).fold(1.0, f64::max) * 1.15;
            (0.0..top, "commits/s", "commits/s vs appender threads")
        }
        Some(raw) => {
            let lo = points.iter().map(&y_of).fold(f64::INFINITY, f64::min);
            let hi = raw
                .max(1e-6)
                .log10()
                .max(points.iter().map(&y_of).fold(lo, f64::max));
            (
                (lo.min(hi) - 0.3)..(hi + 0.3),
                "MB/s (records on the wire, log scale)",
                "MB/s vs appender threads, against the raw link",
            )
        }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, y_range)?;
    let log_y = raw_mb_s.is_some();
    chart
        .configure_mesh()
        .x_desc("appender threads")
        .y_desc(y_desc)
        .x_labels(max_threads.min(16))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if log_y {
                log_label(*y)
            } else {
                format!("{y:.0}")
            }
        })
        .draw()?;
    for (i, batch) in batches.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.batch == *batch)
            .map(|p| (p.threads as f64, y_of(p)))
            .collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?;
        chart.draw_series(line.into_iter().map(|c| Circle::new(c, 3, colour.filled())))?;
    }
    if let Some(raw) = raw_mb_s {
        let y = raw.max(1e-6).log10();
        chart.draw_series(LineSeries::new(
            [(0.5, y), (max_threads as f64 + 0.5, y)],
            BLACK.stroke_width(2),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram;

    fn run(size: u32, base_ns: u64) -> SizeRun {
        let mut r = SizeRun {
            size,
            wire_len: size + 32,
            tailguard: histogram(),
            write_read: histogram(),
            read: histogram(),
        };
        for i in 0..500 {
            r.tailguard.record(3 * base_ns + i * 40).unwrap();
            r.write_read.record(2 * base_ns + i * 20).unwrap();
            r.read.record(base_ns + i * 10).unwrap();
        }
        r
    }

    fn well_formed_svg(path: &Path) -> String {
        let s = std::fs::read_to_string(path).unwrap();
        assert!(s.trim_start().starts_with("<svg"), "{s:.200}");
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(s.contains("<polyline"), "no line drawn");
        s
    }

    #[test]
    fn plots_draw_every_series_with_its_labels() {
        let dir = std::env::temp_dir().join(format!("tg-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("latency.svg");
        let runs = [run(8, 20_000), run(4096, 40_000), run(65536, 300_000)];
        latency_svg(&p, &runs, "machine: test").unwrap();
        let s = well_formed_svg(&p);
        for text in [
            "8 B records",
            "65536 B records",
            "tailguard commit",
            "raw WRITE+READ",
            "raw READ",
            "machine: test",
            "latency (µs, log scale)",
        ] {
            assert!(s.contains(text), "missing {text:?}");
        }
        let points = [1, 2, 4].map(|t| Point {
            threads: t,
            batch: 1,
            commits: 1000 * t as u64,
            records: 1000 * t as u64,
            bytes: 96_000 * t as u64,
            seconds: 1.0,
            ships: 1000,
        });
        let p = dir.join("throughput.svg");
        throughput_svg(&p, &points, 120.0, 64, "machine: test").unwrap();
        let s = well_formed_svg(&p);
        for text in [
            "commits/s",
            "appender threads",
            "raw WRITE bandwidth of the link: 120.0 MB/s",
            "batch 1",
        ] {
            assert!(s.contains(text), "missing {text:?}");
        }
        if std::env::var_os("TG_BENCH_KEEP_PLOTS").is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
