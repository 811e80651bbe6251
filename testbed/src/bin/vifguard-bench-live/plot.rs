//! The plot of docs/bench-live.svg: forwarded rate vs number of vifs, one
//! line per setup.

use std::fmt::Write as _;

use crate::host::Setup;
use crate::stats::{NResult, median};

/// A line chart of forwarded rate vs N (log scale), one polyline per setup.
pub fn svg(res: &[NResult]) -> String {
    let (w, h) = (700.0, 400.0);
    // The right margin holds the legend (the longest label is about 150 px).
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let ymax_raw = res
        .iter()
        .flat_map(|r| Setup::ALL.iter().map(move |s| median(&r.pps(*s))))
        .fold(0.0f64, f64::max)
        / 1e6;
    // A round axis maximum: 1, 2 or 5 times a power of ten, with 5 ticks.
    let step = {
        let raw = (ymax_raw * 1.1 / 5.0).max(1e-3);
        let p = 10f64.powf(raw.log10().floor());
        let m = raw / p;
        p * if m <= 1.0 {
            1.0
        } else if m <= 2.0 {
            2.0
        } else if m <= 5.0 {
            5.0
        } else {
            10.0
        }
    };
    let ticks = ((ymax_raw * 1.1 / step).ceil() as usize).max(1);
    let ymax = step * ticks as f64;
    let xs: Vec<f64> = res.iter().map(|r| (r.n as f64).log2()).collect();
    let (xmin, xmax) = (
        xs.iter().copied().fold(f64::INFINITY, f64::min),
        xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let span = if xmax > xmin { xmax - xmin } else { 1.0 };
    let px = |x: f64| left + (x - xmin) / span * pw;
    let py = |y: f64| top + ph - y / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">Forwarded 64-byte UDP frames from one guest vs number of vifs</text>"#,
        left + pw / 2.0
    );
    for i in 0..=ticks {
        let y = step * i as f64;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            py(y),
            left + pw,
            left - 6.0,
            py(y) + 4.0,
            if step < 0.1 {
                format!("{y:.2}")
            } else {
                format!("{y:.1}")
            }
        );
    }
    for (r, x) in res.iter().zip(&xs) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            px(*x),
            top + ph,
            top + ph + 18.0,
            r.n
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{0:.1}" stroke="#333"/><line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#333"/>"##,
        top + ph,
        left + pw
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">number of vifs N (log scale)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{0:.1}" text-anchor="middle" transform="rotate(-90 18 {0:.1})">forwarded Mpps (median)</text>"#,
        top + ph / 2.0
    );
    // Per setup, in Setup::ALL order: grey no filter, light blue empty
    // program, red legacy, orange and brown nftables, blue and green
    // vifguard.
    let colors: [&str; Setup::COUNT] = [
        "#7f7f7f", "#9ecae1", "#d62728", "#ff7f0e", "#8c564b", "#1f77b4", "#2ca02c",
    ];
    for setup in Setup::ALL {
        let color = colors[setup.index()];
        let pts: Vec<(f64, f64)> = res
            .iter()
            .zip(&xs)
            .map(|(r, x)| (px(*x), py(median(&r.pps(setup)) / 1e6)))
            .collect();
        let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            line.join(" ")
        );
        for (x, y) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{color}"/>"#
            );
        }
        let ly = top + 20.0 + setup.index() as f64 * 22.0;
        let lx = left + pw + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><circle cx="{:.1}" cy="{ly:.1}" r="3.5" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 12.0,
            lx + 30.0,
            ly + 4.0,
            setup.label()
        );
    }
    s.push_str("</svg>\n");
    s
}
