//! Trino's color functions, for charts in a terminal: `rgb(r, g, b)` and `color(text)` make
//! a color, `color(x, low, high, low_color, high_color)` and `color(x, low_color,
//! high_color)` one between two, `render(x, color)` and `render(boolean)` color a value
//! with ANSI escapes, `bar(x, width[, low_color, high_color])` draws a bar.
//!
//! A color is its text: `#rrggbb`, or the name of one of the eight ANSI system colors.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

use crate::functions::invalid_argument;
use crate::functions::row_function::{text, Arg, RowFunction};

/// The ANSI system colors, by their index.
const SYSTEM: [&str; 8] = [
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
];

/// A parsed color.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Color {
    System(u8),
    Rgb(u8, u8, u8),
}

impl Color {
    fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Some(index) = SYSTEM.iter().position(|c| c.eq_ignore_ascii_case(text)) {
            return Ok(Color::System(index as u8));
        }
        let invalid = || invalid_argument(format!("Invalid color: '{text}'"));
        let hex = text.strip_prefix('#').ok_or_else(invalid)?;
        let digit = |at: usize, width: usize| -> Result<u8> {
            let part = hex.get(at..at + width).ok_or_else(invalid)?;
            let value = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
            Ok(if width == 1 { value * 17 } else { value })
        };
        match hex.len() {
            3 => Ok(Color::Rgb(digit(0, 1)?, digit(1, 1)?, digit(2, 1)?)),
            6 => Ok(Color::Rgb(digit(0, 2)?, digit(2, 2)?, digit(4, 2)?)),
            _ => Err(invalid()),
        }
    }

    fn rgb(self) -> (u8, u8, u8) {
        match self {
            Color::Rgb(r, g, b) => (r, g, b),
            // The system colors' usual terminal values.
            Color::System(index) => {
                let on = |bit: u8| if index & bit != 0 { 0xcd } else { 0 };
                (on(1), on(2), on(4))
            }
        }
    }

    fn text(self) -> String {
        match self {
            Color::System(index) => SYSTEM[index as usize].to_string(),
            Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        }
    }

    /// The color `fraction` of the way from `self` to `other`.
    fn towards(self, other: Color, fraction: f64) -> Color {
        let fraction = fraction.clamp(0.0, 1.0);
        let (a, b) = (self.rgb(), other.rgb());
        let mix = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * fraction).round() as u8;
        Color::Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// The ANSI escape that writes in this color (the 256-color palette for RGB).
    fn escape(self) -> String {
        let code = match self {
            Color::System(index) => index as u32,
            Color::Rgb(r, g, b) => {
                let level = |v: u8| (v as u32 * 5 + 127) / 255;
                16 + 36 * level(r) + 6 * level(g) + level(b)
            }
        };
        format!("\u{1b}[38;5;{code}m")
    }
}

const RESET: &str = "\u{1b}[0m";

fn color_value(value: &ScalarValue) -> Result<Color> {
    Color::parse(text(value))
}

fn number(value: &ScalarValue) -> Result<f64> {
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(v)) => Ok(v),
        _ => Err(invalid_argument("Expected a number")),
    }
}

fn answer(text: String) -> Result<ScalarValue> {
    Ok(ScalarValue::Utf8(Some(text)))
}

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    let returns_text = |_: &[DataType]| Ok(DataType::Utf8);
    let functions = [
        RowFunction::new(
            "rgb",
            &[&[Arg::Number, Arg::Number, Arg::Number]],
            "rgb(bigint, bigint, bigint)",
            returns_text,
            |args, _| {
                let part = |at: usize| -> Result<u8> {
                    let v = number(&args[at])?;
                    if !(0.0..=255.0).contains(&v) {
                        return Err(invalid_argument("color components must be between 0 and 255"));
                    }
                    Ok(v as u8)
                };
                answer(Color::Rgb(part(0)?, part(1)?, part(2)?).text())
            },
        ),
        RowFunction::new(
            "color",
            &[
                &[Arg::Text],
                &[Arg::Number, Arg::Text, Arg::Text],
                &[Arg::Number, Arg::Number, Arg::Number, Arg::Text, Arg::Text],
            ],
            "color(varchar), color(double, color, color), color(double, double, double, color, color)",
            returns_text,
            |args, _| {
                let (fraction, low, high) = match args {
                    [single] => return answer(color_value(single)?.text()),
                    [x, low, high] => (number(x)?, low, high),
                    [x, from, to, low, high] => {
                        let (x, from, to) = (number(x)?, number(from)?, number(to)?);
                        ((x - from) / (to - from), low, high)
                    }
                    _ => return Err(invalid_argument("color takes 1, 3 or 5 arguments")),
                };
                let color = color_value(low)?.towards(color_value(high)?, fraction);
                answer(color.text())
            },
        ),
        RowFunction::new(
            "render",
            &[&[Arg::Any], &[Arg::Any, Arg::Text]],
            "render(boolean), render(bigint, color), render(double, color), render(varchar, color)",
            returns_text,
            |args, _| match args {
                [ScalarValue::Boolean(Some(true))] => answer(format!(
                    "{}\u{2713}{RESET}",
                    Color::System(2).escape()
                )),
                [ScalarValue::Boolean(Some(false))] => answer(format!(
                    "{}\u{2717}{RESET}",
                    Color::System(1).escape()
                )),
                [value, color] => {
                    let shown = match value {
                        ScalarValue::Utf8(Some(s)) => s.clone(),
                        other => other.to_string(),
                    };
                    answer(format!("{}{shown}{RESET}", color_value(color)?.escape()))
                }
                _ => Err(invalid_argument("render takes a boolean, or a value and a color")),
            },
        ),
        RowFunction::new(
            "bar",
            &[
                &[Arg::Number, Arg::Number],
                &[Arg::Number, Arg::Number, Arg::Text, Arg::Text],
            ],
            "bar(double, bigint), bar(double, bigint, color, color)",
            returns_text,
            |args, _| {
                let (x, width) = (number(&args[0])?, number(&args[1])?);
                if !(0.0..=1000.0).contains(&width) {
                    return Err(invalid_argument("bar width must be between 0 and 1000"));
                }
                let width = width as usize;
                let (low, high) = match args {
                    [_, _, low, high] => (color_value(low)?, color_value(high)?),
                    _ => (Color::System(1), Color::System(2)),
                };
                let filled = ((x.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
                let mut bar = String::new();
                for i in 0..filled {
                    let fraction = i as f64 / width.max(1) as f64;
                    bar.push_str(&low.towards(high, fraction).escape());
                    bar.push('\u{2588}');
                }
                if filled > 0 {
                    bar.push_str(RESET);
                }
                bar.push_str(&" ".repeat(width - filled));
                answer(bar)
            },
        ),
    ];
    for function in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(function));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_parse_mix_and_escape() {
        assert_eq!(Color::parse("#f00").unwrap(), Color::Rgb(255, 0, 0));
        assert_eq!(Color::parse("Blue").unwrap(), Color::System(4));
        assert!(Color::parse("#12345").is_err());
        let mid = Color::Rgb(0, 0, 0).towards(Color::Rgb(255, 255, 255), 0.5);
        assert_eq!(mid.text(), "#808080");
        assert_eq!(Color::Rgb(255, 0, 0).escape(), "\u{1b}[38;5;196m");
    }
}
