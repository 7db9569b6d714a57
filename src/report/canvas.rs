//! What a chart is made of (panels of marks on axes and one legend, as plain data) and how it
//! is drawn with plotters into PNG (1200 x 800) and SVG, in the font compiled into the binary.

use super::ReportError;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::Color as _;
use std::sync::OnceLock;

/// Width of every chart, pixels.
pub const WIDTH: u32 = 1200;
/// Height of every chart, pixels.
pub const HEIGHT: u32 = 800;

/// The only font charts use (Liberation Sans, SIL OFL 1.1; see `assets/fonts/`).
const FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
/// The family the font is registered as; plotters' default text styles ask for it too.
const FAMILY: &str = "sans-serif";

/// Legend entries beyond this many are summed up in one last entry.
const MAX_LEGEND: usize = 24;

/// Distinct colours for series (Tableau 10, then darker variants), taken in order.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(16, 60, 90),
    RGBColor(160, 80, 0),
    RGBColor(20, 90, 20),
    RGBColor(120, 20, 20),
    RGBColor(80, 50, 120),
    RGBColor(80, 45, 40),
    RGBColor(150, 40, 110),
    RGBColor(60, 60, 60),
    RGBColor(110, 110, 10),
    RGBColor(10, 110, 120),
];

/// Colour of a mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// The i-th series' colour (the palette repeats after 20).
    Series(usize),
    /// Calibrated ceilings and reference lines that belong to no series.
    Ceiling,
}

impl Color {
    fn rgb(self) -> RGBColor {
        match self {
            Color::Series(i) => PALETTE[i % PALETTE.len()],
            Color::Ceiling => BLACK,
        }
    }
}

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (the values span a decade or more).
    Log,
}

/// One axis of a chart's panel: its range, scale and ticks (an axis of a sweep is
/// [`super::axes::Axis`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChartAxis {
    /// What it shows, with the unit.
    pub desc: String,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Scale.
    pub scale: Scale,
    /// Where the ticks go (plotters chooses when `None`).
    pub ticks: Option<Vec<f64>>,
    /// Names of categories at 0, 1, 2, ... (a categorical axis), else empty.
    pub names: Vec<String>,
}

impl ChartAxis {
    /// An axis that holds `values`: logarithmic when they are all positive and the largest is
    /// 10x the smallest or more, else linear from 0 (`from_zero`) or from just below the
    /// smallest; with margins so no mark sits on the frame.
    pub fn fit(desc: impl Into<String>, values: &[f64], from_zero: bool) -> ChartAxis {
        let desc = desc.into();
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let axis = |lo, hi, scale| ChartAxis {
            desc: desc.clone(),
            lo,
            hi,
            scale,
            ticks: None,
            names: Vec::new(),
        };
        if finite.is_empty() {
            return axis(0.0, 1.0, Scale::Linear);
        }
        if lo > 0.0 && hi / lo >= 10.0 {
            let (lo, hi) = (lo / 1.5, hi * 1.5);
            return ChartAxis {
                ticks: Some(log_ticks(lo, hi)),
                ..axis(lo, hi, Scale::Log)
            };
        }
        let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
        let lo = if from_zero && lo >= 0.0 {
            0.0
        } else {
            lo - 0.1 * span
        };
        axis(lo, hi + 0.1 * span, Scale::Linear)
    }

    /// An axis of counts (cores, batch, tokens, steps): like [`ChartAxis::fit`] but not from zero,
    /// with a tick at each distinct count when there are few.
    pub fn counts(desc: impl Into<String>, values: &[f64]) -> ChartAxis {
        let mut axis = ChartAxis::fit(desc, values, false);
        let mut distinct: Vec<f64> = values.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if !distinct.is_empty() && distinct.len() <= 16 {
            if axis.scale == Scale::Linear {
                let span = distinct[distinct.len() - 1] - distinct[0];
                let pad = if span > 0.0 { 0.15 * span } else { 1.0 };
                axis.lo = (distinct[0] - pad).max(0.0);
                axis.hi = distinct[distinct.len() - 1] + pad;
            }
            axis.ticks = Some(distinct);
        }
        axis
    }

    /// A categorical axis: one slot per name.
    pub fn categories(desc: impl Into<String>, names: Vec<String>) -> ChartAxis {
        ChartAxis {
            desc: desc.into(),
            lo: -0.5,
            hi: names.len() as f64 - 0.5,
            scale: Scale::Linear,
            ticks: Some((0..names.len()).map(|i| i as f64).collect()),
            names,
        }
    }

    fn tick_label(&self, v: f64) -> String {
        if self.names.is_empty() {
            return number(v);
        }
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 {
            self.names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// Ticks of a logarithmic axis from `lo` to `hi`: 1, 2, 5 times the powers of ten, or every
/// digit when that gives fewer than four.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let within = |digits: &[f64]| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|k| digits.iter().map(move |d| d * 10f64.powi(k)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect()
    };
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 4 {
        coarse
    } else {
        within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

/// Shape drawn at each point of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
}

/// Something drawn inside a panel, in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    /// A polyline, with markers at its points when `marker` is set.
    Line {
        /// Points in drawing order.
        points: Vec<(f64, f64)>,
        /// Colour.
        color: Color,
        /// Dashed (ideal lines, ceilings, p99) rather than solid.
        dashed: bool,
        /// Marker at each point.
        marker: Option<Marker>,
    },
    /// A bar from the axis' base up to `y`, `x0..x1` wide.
    Bar {
        /// Left edge.
        x0: f64,
        /// Right edge.
        x1: f64,
        /// Height.
        y: f64,
        /// Colour.
        color: Color,
    },
    /// A vertical error bar from `lo` to `hi` at `x` (± one standard deviation).
    ErrorBar {
        /// Position.
        x: f64,
        /// Lower end.
        lo: f64,
        /// Upper end.
        hi: f64,
    },
    /// A short text beside a point (batch sizes, parallel efficiency, ceiling values).
    Note {
        /// The point.
        at: (f64, f64),
        /// The text.
        text: String,
        /// Colour.
        color: Color,
    },
}

impl Mark {
    /// A solid line with circles at its points.
    pub fn series(points: Vec<(f64, f64)>, color: Color) -> Mark {
        Mark::Line {
            points,
            color,
            dashed: false,
            marker: Some(Marker::Circle),
        }
    }

    /// A dashed line without markers (ideal lines, ceilings).
    pub fn dashed(points: Vec<(f64, f64)>, color: Color) -> Mark {
        Mark::Line {
            points,
            color,
            dashed: true,
            marker: None,
        }
    }

    /// Error bars of ± one standard deviation at each `(x, mean, stddev)` that has one.
    pub fn error_bars(points: &[(f64, f64, Option<f64>)]) -> Vec<Mark> {
        points
            .iter()
            .filter_map(|&(x, mean, sd)| {
                sd.filter(|s| *s > 0.0).map(|s| Mark::ErrorBar {
                    x,
                    lo: (mean - s).max(f64::MIN_POSITIVE),
                    hi: mean + s,
                })
            })
            .collect()
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A line sample: solid or dashed, with or without a marker.
    Line {
        /// Dashed.
        dashed: bool,
        /// Marker.
        marker: Option<Marker>,
    },
    /// A filled box (bars).
    Bar,
    /// Text alone (a key to numbered categories).
    Text,
}

/// One entry of a chart's legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// What the entry stands for.
    pub label: String,
    /// Its colour.
    pub color: Color,
    /// Its sample.
    pub swatch: Swatch,
}

impl LegendEntry {
    /// A solid line with circles (a series).
    pub fn series(label: impl Into<String>, color: Color) -> Self {
        LegendEntry {
            label: label.into(),
            color,
            swatch: Swatch::Line {
                dashed: false,
                marker: Some(Marker::Circle),
            },
        }
    }

    /// A dashed line (ideal lines, ceilings).
    pub fn dashed(label: impl Into<String>, color: Color) -> Self {
        LegendEntry {
            label: label.into(),
            color,
            swatch: Swatch::Line {
                dashed: true,
                marker: None,
            },
        }
    }
}

/// One legend entry per series, coloured in order, then a dashed entry saying what the dashed
/// line drawn in each series' colour is (its ideal line, a second quantity).
pub fn series_legend<'a>(
    labels: impl IntoIterator<Item = &'a str>,
    dashed: &str,
) -> Vec<LegendEntry> {
    let mut legend: Vec<LegendEntry> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| LegendEntry::series(label, Color::Series(i)))
        .collect();
    legend.push(LegendEntry::dashed(dashed, Color::Ceiling));
    legend
}

/// One plot area: axes, a subtitle and its marks.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Subtitle above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: ChartAxis,
    /// Vertical axis.
    pub y: ChartAxis,
    /// What is drawn, in order.
    pub marks: Vec<Mark>,
}

/// A chart: panels under a title, one legend for all of them below.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File name without extension, under `charts/`.
    pub name: String,
    /// Title.
    pub title: String,
    /// What it shows and how to read it (a sentence for `report.md`).
    pub about: String,
    /// The results files its data came from.
    pub sources: Vec<&'static str>,
    /// Panels, left to right (or top to bottom when `stacked`).
    pub panels: Vec<Panel>,
    /// Panels one above the other (for long category names) rather than side by side.
    pub stacked: bool,
    /// The legend, shared by the panels.
    pub legend: Vec<LegendEntry>,
}

/// Registers the shipped font once per process; no system font is ever looked up.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// A number for a label: no trailing zeros, 3 significant digits below 100.
pub fn number(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// An axis with its ticks where the [`ChartAxis`] puts them.
struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn text_style(size: u32, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        color: color.to_backend_color(),
        ..TextStyle::from((FAMILY, size).into_font())
    }
}

fn draw_marks<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    panel: &Panel,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let x_label = |v: &f64| panel.x.tick_label(*v);
    let y_label = |v: &f64| panel.y.tick_label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(panel.x.desc.as_str())
        .y_desc(panel.y.desc.as_str())
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE);
    if !panel.x.names.is_empty() {
        mesh.disable_x_mesh();
    }
    mesh.draw()?;
    let base = match panel.y.scale {
        Scale::Log => panel.y.lo,
        Scale::Linear => panel.y.lo.max(0.0),
    };
    for mark in &panel.marks {
        match mark {
            Mark::Line {
                points,
                color,
                dashed,
                marker,
            } => {
                let c = color.rgb();
                if *dashed {
                    chart.draw_series(std::iter::once(DashedPathElement::new(
                        points.clone(),
                        8,
                        6,
                        c.stroke_width(2),
                    )))?;
                } else {
                    chart.draw_series(std::iter::once(PathElement::new(
                        points.clone(),
                        c.stroke_width(2),
                    )))?;
                }
                match marker {
                    Some(Marker::Circle) => {
                        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
                    }
                    Some(Marker::Triangle) => {
                        chart.draw_series(
                            points
                                .iter()
                                .map(|&p| TriangleMarker::new(p, 7, c.filled())),
                        )?;
                    }
                    None => {}
                }
            }
            Mark::Bar { x0, x1, y, color } => {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(*x0, base), (*x1, *y)],
                    color.rgb().filled(),
                )))?;
            }
            Mark::ErrorBar { x, lo, hi } => {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(*x, *lo), (*x, *hi)],
                    BLACK.stroke_width(2),
                )))?;
            }
            Mark::Note { at, text, color } => {
                chart.draw_series(std::iter::once(
                    EmptyElement::at(*at)
                        + Text::new(text.clone(), (6, -18), text_style(14, color.rgb())),
                ))?;
            }
        }
    }
    Ok(())
}

macro_rules! with_y {
    ($builder:expr, $panel:expr, $x:expr) => {
        match ($panel.y.scale, $panel.y.ticks.clone()) {
            (Scale::Log, Some(ticks)) => {
                let y = Ticked::<LogCoord<f64>> {
                    inner: ($panel.y.lo..$panel.y.hi).log_scale().into(),
                    ticks,
                };
                let mut chart = $builder.build_cartesian_2d($x, y)?;
                draw_marks(&mut chart, $panel)
            }
            (Scale::Log, None) => {
                let mut chart =
                    $builder.build_cartesian_2d($x, ($panel.y.lo..$panel.y.hi).log_scale())?;
                draw_marks(&mut chart, $panel)
            }
            (Scale::Linear, _) => {
                let mut chart = $builder.build_cartesian_2d($x, $panel.y.lo..$panel.y.hi)?;
                draw_marks(&mut chart, $panel)
            }
        }
    };
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult<DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.title.as_str(), (FAMILY, 20))
        .margin(16)
        .margin_right(28)
        .x_label_area_size(56)
        .y_label_area_size(80);
    let (lo, hi) = (panel.x.lo, panel.x.hi);
    match (panel.x.scale, panel.x.ticks.clone()) {
        (Scale::Log, None) => with_y!(builder, panel, (lo..hi).log_scale()),
        (Scale::Linear, None) => with_y!(builder, panel, lo..hi),
        (Scale::Log, Some(ticks)) => with_y!(
            builder,
            panel,
            Ticked::<LogCoord<f64>> {
                inner: (lo..hi).log_scale().into(),
                ticks,
            }
        ),
        (Scale::Linear, Some(ticks)) => with_y!(
            builder,
            panel,
            Ticked::<RangedCoordf64> {
                inner: (lo..hi).into(),
                ticks,
            }
        ),
    }
}

/// Rows of the legend strip: entries laid out in as many columns as their widest label allows.
fn legend_layout(legend: &[LegendEntry]) -> (Vec<LegendEntry>, usize) {
    let mut entries: Vec<LegendEntry> = legend.iter().take(MAX_LEGEND).cloned().collect();
    if legend.len() > MAX_LEGEND {
        entries.push(LegendEntry {
            label: format!("... and {} more (see report.md)", legend.len() - MAX_LEGEND),
            color: Color::Ceiling,
            swatch: Swatch::Line {
                dashed: false,
                marker: None,
            },
        });
    }
    let widest = entries
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(0);
    let column_px = 44 + 8 * widest;
    let columns = ((WIDTH as usize - 40) / column_px.max(1)).clamp(1, 4);
    (entries, columns)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    columns: usize,
) -> DrawResult<DB> {
    let column_px = (WIDTH as i32 - 40) / columns as i32;
    for (i, e) in entries.iter().enumerate() {
        let x = 20 + (i % columns) as i32 * column_px;
        let y = 12 + (i / columns) as i32 * 24;
        let c = e.color.rgb();
        match e.swatch {
            Swatch::Line { dashed, marker } => {
                let line = vec![(x, y), (x + 30, y)];
                if dashed {
                    area.draw(&DashedPathElement::new(line, 6, 4, c.stroke_width(2)))?;
                } else {
                    area.draw(&PathElement::new(line, c.stroke_width(2)))?;
                }
                match marker {
                    Some(Marker::Circle) => area.draw(&Circle::new((x + 15, y), 5, c.filled()))?,
                    Some(Marker::Triangle) => {
                        area.draw(&TriangleMarker::new((x + 15, y), 7, c.filled()))?
                    }
                    None => {}
                }
            }
            Swatch::Bar => area.draw(&Rectangle::new([(x, y - 7), (x + 30, y + 7)], c.filled()))?,
            Swatch::Text => {}
        }
        area.draw(&Text::new(
            e.label.clone(),
            (x + 38, y - 8),
            text_style(15, BLACK),
        ))?;
    }
    Ok(())
}

fn render<DB: DrawingBackend>(chart: &Chart, root: DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let body = root.titled(chart.title.as_str(), (FAMILY, 28))?;
    let (entries, columns) = legend_layout(&chart.legend);
    let rows = entries.len().div_ceil(columns);
    let legend_px = if rows == 0 { 0 } else { 24 * rows as u32 + 12 };
    let (_, body_h) = body.dim_in_pixel();
    let (plots, legend) = body.split_vertically(body_h.saturating_sub(legend_px));
    let panels = chart.panels.len().max(1);
    let areas = if chart.stacked {
        plots.split_evenly((panels, 1))
    } else {
        plots.split_evenly((1, panels))
    };
    for (area, panel) in areas.iter().zip(&chart.panels) {
        draw_panel(area, panel)?;
    }
    draw_legend(&legend, &entries, columns)?;
    root.present()
}

fn draw_error(chart: &Chart, e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw {
        chart: chart.name.clone(),
        reason: e.to_string(),
    }
}

/// The chart as a PNG file (8-bit RGB), `WIDTH` x `HEIGHT`.
pub fn png(chart: &Chart) -> Result<Vec<u8>, ReportError> {
    register_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    render(
        chart,
        BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area(),
    )
    .map_err(|e| draw_error(chart, e))?;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| draw_error(chart, e))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| draw_error(chart, e))?;
    writer.finish().map_err(|e| draw_error(chart, e))?;
    Ok(bytes)
}

/// The chart as an SVG document, `WIDTH` x `HEIGHT`.
pub fn svg(chart: &Chart) -> Result<String, ReportError> {
    register_font()?;
    let mut text = String::new();
    render(
        chart,
        SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area(),
    )
    .map_err(|e| draw_error(chart, e))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_go_logarithmic_across_a_decade() {
        let log = ChartAxis::fit("y", &[1.0, 50.0], true);
        assert_eq!(log.scale, Scale::Log);
        assert_eq!(log.ticks, Some(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]));
        let linear = ChartAxis::fit("y", &[2.0, 5.0], true);
        assert_eq!((linear.scale, linear.lo), (Scale::Linear, 0.0));
        let counts = ChartAxis::counts("cores", &[1.0, 2.0, 4.0, 2.0]);
        assert_eq!(counts.ticks, Some(vec![1.0, 2.0, 4.0]));
        assert!(counts.lo < 1.0 && counts.hi > 4.0);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(1234.56), "1235");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.1234), "0.123");
    }
}
