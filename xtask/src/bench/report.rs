//! Turning the pairs of a comparison into the generated section of
//! docs/benchmarks.md (tables) and an SVG chart, written by hand.

use std::fmt::Write as _;

use super::run::Sample;

/// Start and end markers of the generated section in docs/benchmarks.md.
pub const START: &str = "<!-- bench-compare:start -->";
/// See [`START`].
pub const END: &str = "<!-- bench-compare:end -->";

/// One workload on one target, measured in pairs.
#[derive(Clone, Debug)]
pub struct Case {
    /// `null` or `real`.
    pub target: &'static str,
    /// Display name of the mode (`sync, 1 in flight`).
    pub mode: String,
    /// Body size, bytes.
    pub size: usize,
    /// (rmq, peer) per pair, in run order.
    pub pairs: Vec<(Sample, Sample)>,
}

/// The median of finite values (NaN when there are none).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Case {
    fn med(&self, f: impl Fn(&Sample) -> f64) -> (f64, f64) {
        (
            median(self.pairs.iter().map(|(a, _)| f(a))),
            median(self.pairs.iter().map(|(_, b)| f(b))),
        )
    }

    /// Median over pairs of rmq ÷ peer.
    pub fn ratio(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        median(self.pairs.iter().map(|(a, b)| f(a) / f(b)))
    }

    fn label(&self) -> String {
        format!("{} {} B", self.mode, self.size)
    }
}

fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    let rounded = x.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

fn fmt_ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}×")
    } else {
        "–".to_owned()
    }
}

fn mib(bytes: f64) -> String {
    if bytes.is_finite() {
        format!("{:.1}", bytes / 1024.0 / 1024.0)
    } else {
        "–".to_owned()
    }
}

/// The summary table: medians over pairs and the median of the per-pair ratios.
pub fn summary_table(cases: &[Case]) -> String {
    let mut s = String::from(
        "| target | mode | body | msgs/s rmq | msgs/s peer | **throughput ratio** | p50 µs rmq / peer | p99 µs rmq / peer | CPU s per M msgs rmq | CPU s per M msgs peer | **CPU ratio** | peak RSS MiB rmq / peer | failed rmq / peer |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cases {
        let (tr, tp) = c.med(|x| x.msgs_per_s);
        let (p50r, p50p) = c.med(|x| x.p50_us);
        let (p99r, p99p) = c.med(|x| x.p99_us);
        let (cr, cp) = c.med(Sample::cpu_per_million);
        let (rr, rp) = c.med(|x| x.max_rss as f64);
        let fr: u64 = c.pairs.iter().map(|(a, _)| a.failed).sum();
        let fp: u64 = c.pairs.iter().map(|(_, b)| b.failed).sum();
        let _ = writeln!(
            s,
            "| {} | {} | {} B | {} | {} | **{}** | {} / {} | {} / {} | {:.2} | {:.2} | **{}** | {} / {} | {fr} / {fp} |",
            c.target,
            c.mode,
            c.size,
            fmt_num(tr),
            fmt_num(tp),
            fmt_ratio(c.ratio(|x| x.msgs_per_s)),
            fmt_num(p50r),
            fmt_num(p50p),
            fmt_num(p99r),
            fmt_num(p99p),
            cr,
            cp,
            fmt_ratio(c.ratio(Sample::cpu_per_million)),
            mib(rr),
            mib(rp),
        );
    }
    s
}

/// Every pair, for the record.
pub fn pairs_table(cases: &[Case]) -> String {
    let mut s = String::from(
        "| target | mode | body | pair | msgs/s rmq / peer | ratio | CPU s/M rmq / peer | ratio | p99 µs rmq / peer | RSS MiB rmq / peer | null-broker CPU s rmq / peer |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cases {
        for (i, (a, b)) in c.pairs.iter().enumerate() {
            let server =
                |x: &Sample| x.server_cpu_s.map_or("–".to_owned(), |v| format!("{v:.2}"));
            let _ = writeln!(
                s,
                "| {} | {} | {} B | {} | {} / {} | {} | {:.2} / {:.2} | {} | {} / {} | {} / {} | {} / {} |",
                c.target,
                c.mode,
                c.size,
                i + 1,
                fmt_num(a.msgs_per_s),
                fmt_num(b.msgs_per_s),
                fmt_ratio(a.msgs_per_s / b.msgs_per_s),
                a.cpu_per_million(),
                b.cpu_per_million(),
                fmt_ratio(a.cpu_per_million() / b.cpu_per_million()),
                fmt_num(a.p99_us),
                fmt_num(b.p99_us),
                mib(a.max_rss as f64),
                mib(b.max_rss as f64),
                server(a),
                server(b),
            );
        }
    }
    s
}

/// A horizontal bar chart of the two ratios (throughput, CPU per message) per case,
/// rmq ÷ peer, with the 1× line.
pub fn svg_chart(cases: &[Case]) -> String {
    let row_h = 34.0;
    let left = 250.0;
    let plot_w = 520.0;
    let top = 50.0;
    let height = top + row_h * cases.len() as f64 + 40.0;
    let width = left + plot_w + 40.0;
    let ratios: Vec<(f64, f64)> = cases
        .iter()
        .map(|c| (c.ratio(|x| x.msgs_per_s), c.ratio(Sample::cpu_per_million)))
        .collect();
    let max = ratios
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .filter(|x| x.is_finite())
        .fold(2.0_f64, f64::max)
        .ceil();
    let x = |v: f64| left + plot_w * (v / max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="18" font-size="14" font-weight="bold">rmq ÷ rocketmq-client-rust 1.0.0 (median of pairs)</text>"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="28" width="12" height="10" fill="#2b6cb0"/><text x="{}" y="37">throughput (higher is better)</text><rect x="{}" y="28" width="12" height="10" fill="#dd6b20"/><text x="{}" y="37">CPU per message (lower is better)</text>"##,
        left + 16.0,
        left + 220.0,
        left + 236.0
    );
    let mut tick = 0.0;
    while tick <= max + 1e-9 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{tick}×</text>"##,
            height - 30.0,
            height - 14.0
        );
        tick += if max > 6.0 { 1.0 } else { 0.5 };
    }
    for (i, (c, (t, cpu))) in cases.iter().zip(&ratios).enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{} · {}</text>"#,
            left - 8.0,
            y + 20.0,
            c.target,
            xml(&c.label())
        );
        for (j, (v, color)) in [(*t, "#2b6cb0"), (*cpu, "#dd6b20")].iter().enumerate() {
            if !v.is_finite() {
                continue;
            }
            let by = y + 6.0 + 12.0 * j as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{left}" y="{by:.1}" width="{:.1}" height="11" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="10">{v:.2}</text>"#,
                x(*v) - left,
                x(*v) + 3.0,
                by + 9.0
            );
        }
    }
    let one = x(1.0);
    let _ = writeln!(
        s,
        r#"<line x1="{one:.1}" y1="{top}" x2="{one:.1}" y2="{:.1}" stroke="black" stroke-dasharray="4 3"/>"#,
        height - 30.0
    );
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Replaces the text between [`START`] and [`END`] in `doc` with `section`, or
/// appends the markers and the section when they are missing.
pub fn splice(doc: &str, section: &str) -> String {
    match (doc.find(START), doc.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{START}\n{section}{END}{}",
                &doc[..a],
                &doc[b + END.len()..]
            )
        }
        _ => {
            let mut out = doc.trim_end().to_owned();
            out.push_str(&format!("\n\n{START}\n{section}{END}\n"));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, cpu: f64, acked: u64) -> Sample {
        Sample {
            msgs_per_s: rate,
            p50_us: 10.0,
            p99_us: 100.0,
            acked,
            failed: 0,
            cpu_s: cpu,
            max_rss: 8 << 20,
            wall_s: 1.0,
            server_cpu_s: None,
        }
    }

    #[test]
    fn ratios_are_medians_of_pairs() {
        let c = Case {
            target: "null",
            mode: "async, 64 in flight".into(),
            size: 128,
            pairs: vec![
                (sample(200.0, 1.0, 1000), sample(100.0, 2.0, 1000)),
                (sample(300.0, 1.0, 1000), sample(100.0, 4.0, 1000)),
                (sample(100.0, 1.0, 1000), sample(100.0, 1.0, 1000)),
            ],
        };
        assert_eq!(c.ratio(|x| x.msgs_per_s), 2.0);
        assert_eq!(c.ratio(Sample::cpu_per_million), 0.5);
        let t = summary_table(std::slice::from_ref(&c));
        assert!(t.contains("**2.00×**") && t.contains("**0.50×**"), "{t}");
        assert_eq!(pairs_table(std::slice::from_ref(&c)).lines().count(), 2 + 3);
        let svg = svg_chart(&[c]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn median_skips_nan_and_averages_the_middle() {
        assert_eq!(median([3.0, 1.0, f64::NAN, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }

    #[test]
    fn splice_replaces_between_markers_or_appends() {
        let doc = format!("# B\n\nintro\n{START}\nold\n{END}\ntail\n");
        let out = splice(&doc, "new\n");
        assert_eq!(out, format!("# B\n\nintro\n{START}\nnew\n{END}\ntail\n"));
        assert_eq!(splice(&out, "new\n"), out, "reruns replace, not append");
        let appended = splice("# B\n", "x\n");
        assert_eq!(appended, format!("# B\n\n{START}\nx\n{END}\n"));
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(1234567.4), "1\u{202f}234\u{202f}567");
        assert_eq!(fmt_num(999.0), "999");
        assert_eq!(fmt_num(f64::NAN), "–");
    }
}
