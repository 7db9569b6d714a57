//! What a chart is made of (panels of marks on axes, as plain data) and how it is drawn with
//! plotters into PNG (1200 x 800) and SVG, in the font compiled into the binary.

use super::ReportError;
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

/// Distinct colours for series (Tableau 10), taken in order.
const PALETTE: [RGBColor; 10] = [
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
];

/// Colour of a mark: series `Series(i)` cycle through the palette; `Ceiling` is black.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// The i-th series' colour.
    Series(usize),
    /// Calibrated ceilings and ideal lines that belong to no series.
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
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (the values span a decade or more).
    Log,
    /// Named categories at positions 0, 1, 2, ...
    Categories(Vec<String>),
}

/// One axis of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// What it shows, with the unit.
    pub desc: String,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Scale.
    pub scale: Scale,
}

impl Axis {
    /// An axis that holds `values`: logarithmic when they are all positive and the largest is
    /// 10x the smallest or more, else linear from 0 (`from_zero`) or from just below the
    /// smallest; with margins so no mark sits on the frame.
    pub fn fit(desc: impl Into<String>, values: &[f64], from_zero: bool) -> Axis {
        let desc = desc.into();
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if finite.is_empty() {
            return Axis {
                desc,
                lo: 0.0,
                hi: 1.0,
                scale: Scale::Linear,
            };
        }
        if lo > 0.0 && hi / lo >= 10.0 {
            return Axis {
                desc,
                lo: lo / 1.5,
                hi: hi * 1.5,
                scale: Scale::Log,
            };
        }
        let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
        let lo = if from_zero && lo >= 0.0 {
            0.0
        } else {
            lo - 0.1 * span
        };
        Axis {
            desc,
            lo,
            hi: hi + 0.1 * span,
            scale: Scale::Linear,
        }
    }

    /// A categorical axis: one slot per name.
    pub fn categories(desc: impl Into<String>, names: Vec<String>) -> Axis {
        Axis {
            desc: desc.into(),
            lo: -0.5,
            hi: names.len() as f64 - 0.5,
            scale: Scale::Categories(names),
        }
    }
}

/// Shape drawn at each point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Cross.
    Cross,
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
        /// Legend entry.
        label: Option<String>,
    },
    /// A bar from 0 (or the axis' lower end) up to `y`, `x0..x1` wide.
    Bar {
        /// Left edge.
        x0: f64,
        /// Right edge.
        x1: f64,
        /// Height.
        y: f64,
        /// Colour.
        color: Color,
        /// Legend entry (given once per colour).
        label: Option<String>,
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
    /// A short text beside a point (batch sizes, parallel efficiency).
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
    pub fn series(points: Vec<(f64, f64)>, color: Color, label: Option<String>) -> Mark {
        Mark::Line {
            points,
            color,
            dashed: false,
            marker: Some(Marker::Circle),
            label,
        }
    }

    /// A dashed line without markers (ideal lines, ceilings).
    pub fn dashed(points: Vec<(f64, f64)>, color: Color, label: Option<String>) -> Mark {
        Mark::Line {
            points,
            color,
            dashed: true,
            marker: None,
            label,
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

/// One plot area: axes, a subtitle and its marks.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Subtitle above the plot.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// What is drawn, in order.
    pub marks: Vec<Mark>,
}

/// A chart: one or two panels side by side under a title.
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
    /// Panels, left to right.
    pub panels: Vec<Panel>,
}

/// Registers the shipped font once per process; no system font is ever looked up.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

/// A number as a tick label: no trailing zeros, at most 3 significant decimals.
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

/// A categorical axis: slots at 0, 1, ... `count - 1`, a tick at the centre of each.
struct Slots {
    inner: RangedCoordf64,
    count: usize,
}

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        (0..self.count).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn tick_label(axis: &Axis, v: f64) -> String {
    match &axis.scale {
        Scale::Categories(names) => {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
        _ => number(v),
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
    let x_labels = match &panel.x.scale {
        Scale::Categories(names) => names.len(),
        _ => 10,
    };
    chart
        .configure_mesh()
        .x_desc(panel.x.desc.as_str())
        .y_desc(panel.y.desc.as_str())
        .x_labels(x_labels)
        .y_labels(10)
        .x_label_formatter(&|v| tick_label(&panel.x, *v))
        .y_label_formatter(&|v| tick_label(&panel.y, *v))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let base = if panel.y.scale == Scale::Log {
        panel.y.lo
    } else {
        panel.y.lo.max(0.0)
    };
    let mut legend = false;
    for mark in &panel.marks {
        match mark {
            Mark::Line {
                points,
                color,
                dashed,
                marker,
                label,
            } => {
                let c = color.rgb();
                let style = c.stroke_width(2);
                let annotation = if *dashed {
                    chart.draw_series(std::iter::once(DashedPathElement::new(
                        points.clone().into_iter(),
                        8,
                        6,
                        style,
                    )))?
                } else {
                    chart.draw_series(std::iter::once(PathElement::new(points.clone(), style)))?
                };
                if let Some(label) = label {
                    legend = true;
                    annotation.label(label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                    });
                }
                match marker {
                    Some(Marker::Circle) => {
                        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
                    }
                    Some(Marker::Triangle) => {
                        chart.draw_series(
                            points.iter().map(|&p| TriangleMarker::new(p, 7, c.filled())),
                        )?;
                    }
                    Some(Marker::Cross) => {
                        chart.draw_series(
                            points.iter().map(|&p| Cross::new(p, 6, c.stroke_width(2))),
                        )?;
                    }
                    None => {}
                }
            }
            Mark::Bar {
                x0,
                x1,
                y,
                color,
                label,
            } => {
                let c = color.rgb();
                let annotation = chart.draw_series(std::iter::once(Rectangle::new(
                    [(*x0, base), (*x1, *y)],
                    c.filled(),
                )))?;
                if let Some(label) = label {
                    legend = true;
                    annotation.label(label.as_str()).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 24, y + 6)], c.filled())
                    });
                }
            }
            Mark::ErrorBar { x, lo, hi } => {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(*x, *lo), (*x, *hi)],
                    BLACK.stroke_width(2),
                )))?;
            }
            Mark::Note { at, text, color } => {
                let rgb = color.rgb();
                let style = TextStyle::from((FAMILY, 14).into_font()).color(&rgb);
                chart.draw_series(std::iter::once(
                    EmptyElement::at(*at) + Text::new(text.clone(), (6, -18), style),
                ))?;
            }
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .draw()?;
    }
    Ok(())
}

macro_rules! with_coords {
    ($builder:expr, $panel:expr, $x:expr) => {
        match $panel.y.scale {
            Scale::Log => {
                let mut chart = $builder.build_cartesian_2d($x, ($panel.y.lo..$panel.y.hi).log_scale())?;
                draw_marks(&mut chart, $panel)
            }
            _ => {
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
        .x_label_area_size(56)
        .y_label_area_size(80);
    let (lo, hi) = (panel.x.lo, panel.x.hi);
    match &panel.x.scale {
        Scale::Log => with_coords!(builder, panel, (lo..hi).log_scale()),
        Scale::Linear => with_coords!(builder, panel, lo..hi),
        Scale::Categories(names) => with_coords!(
            builder,
            panel,
            Slots {
                inner: (lo..hi).into(),
                count: names.len(),
            }
        ),
    }
}

fn render<DB: DrawingBackend>(chart: &Chart, root: DrawingArea<DB, Shift>) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let body = root.titled(chart.title.as_str(), (FAMILY, 28))?;
    for (area, panel) in body
        .split_evenly((1, chart.panels.len().max(1)))
        .iter()
        .zip(&chart.panels)
    {
        draw_panel(area, panel)?;
    }
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
