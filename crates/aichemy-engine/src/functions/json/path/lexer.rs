//! Splits a path text into tokens.

use super::syntax::CompareOp;
use crate::functions::json::value::Json;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// `$`.
    Dollar,
    /// `$name`.
    Variable(String),
    /// `@`.
    At,
    /// An identifier or a keyword (`lax`, `last`, `to`, `exists`, …).
    Word(String),
    Number(Json),
    /// A string literal, unescaped.
    Text(String),
    Dot,
    DotDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Star,
    Question,
    Plus,
    Minus,
    Slash,
    Percent,
    Compare(CompareOp),
    Not,
    And,
    Or,
    End,
}

/// The token after the last one.
pub(super) static END: Tok = Tok::End;

pub(super) struct Token {
    pub(super) tok: Tok,
    /// Where the token starts, in characters from the start of the path text.
    pub(super) offset: usize,
}

/// A human readable name of a token, for error messages.
pub(super) fn describe(tok: &Tok) -> String {
    let symbol = match tok {
        Tok::Dollar => "$",
        Tok::At => "@",
        Tok::Dot => ".",
        Tok::DotDot => "..",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Star => "*",
        Tok::Question => "?",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Not => "!",
        Tok::And => "&&",
        Tok::Or => "||",
        Tok::Compare(op) => op.symbol(),
        Tok::Variable(name) => return format!("'${name}'"),
        Tok::Word(word) => return format!("'{word}'"),
        Tok::Number(number) => return format!("the number {}", number.to_text()),
        Tok::Text(text) => return format!("the string {}", Json::String(text.clone()).to_text()),
        Tok::End => return "the end of the path".to_string(),
    };
    format!("'{symbol}'")
}

/// The characters `chars[start..end]` as a string.
fn collect_chars(chars: &[char], start: usize, end: usize) -> String {
    chars.get(start..end).unwrap_or_default().iter().collect()
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a path text into tokens.
pub(super) struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    pub(super) fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            at: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// The text from `start` to the current position.
    fn text(&self, start: usize) -> String {
        collect_chars(&self.chars, start, self.at)
    }

    fn fail<T>(&self, message: &str) -> Result<T, String> {
        Err(format!("{message} at position {}", self.at + 1))
    }

    /// All the tokens, the last one `End`.
    pub(super) fn tokens(mut self) -> Result<Vec<Token>, String> {
        let mut tokens = Vec::new();
        loop {
            while matches!(self.peek(0), Some(' ' | '\t' | '\n' | '\r')) {
                self.at += 1;
            }
            let offset = self.at;
            let Some(c) = self.peek(0) else {
                tokens.push(Token {
                    tok: Tok::End,
                    offset,
                });
                return Ok(tokens);
            };
            let tok = self.token(c)?;
            tokens.push(Token { tok, offset });
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, String> {
        let next = self.peek(1);
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            return self.number();
        }
        if is_word_start(c) {
            return Ok(Tok::Word(self.word()));
        }
        if c == '"' {
            return self.string().map(Tok::Text);
        }
        if c == '$' && next.is_some_and(is_word_start) {
            self.at += 1;
            return Ok(Tok::Variable(self.word()));
        }
        let (tok, len) = match (c, next) {
            ('.', Some('.')) => (Tok::DotDot, 2),
            ('=', Some('=')) => (Tok::Compare(CompareOp::Equal), 2),
            ('!', Some('=')) | ('<', Some('>')) => (Tok::Compare(CompareOp::NotEqual), 2),
            ('<', Some('=')) => (Tok::Compare(CompareOp::LessOrEqual), 2),
            ('>', Some('=')) => (Tok::Compare(CompareOp::GreaterOrEqual), 2),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('<', _) => (Tok::Compare(CompareOp::Less), 1),
            ('>', _) => (Tok::Compare(CompareOp::Greater), 1),
            ('!', _) => (Tok::Not, 1),
            ('.', _) => (Tok::Dot, 1),
            ('$', _) => (Tok::Dollar, 1),
            ('@', _) => (Tok::At, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('*', _) => (Tok::Star, 1),
            ('?', _) => (Tok::Question, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            _ => return self.fail(&format!("unexpected character '{c}'")),
        };
        self.at += len;
        Ok(tok)
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self.peek(0).is_some_and(is_word_char) {
            self.at += 1;
        }
        self.text(start)
    }

    fn skip_digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// `12`, `1.5`, `.5`, `1.`, `1e3`, `2.5E-4`: an integer when it has neither a fraction
    /// nor an exponent (and fits), a double otherwise.
    fn number(&mut self) -> Result<Tok, String> {
        let start = self.at;
        self.skip_digits();
        if self.peek(0) == Some('.') {
            self.at += 1;
            self.skip_digits();
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1 + sign;
                self.skip_digits();
            }
        }
        let text = self.text(start);
        if let Ok(value) = text.parse::<i128>() {
            return Ok(Tok::Number(Json::Int(value)));
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Tok::Number(Json::Float(value))),
            _ => {
                self.at = start;
                self.fail(&format!("number {text} out of range"))
            }
        }
    }

    /// A string literal: `""` is a quote (Trino), and JSON's backslash escapes apply.
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                self.at = start;
                return self.fail("unterminated string");
            };
            self.at += 1;
            match c {
                '"' if self.peek(0) == Some('"') => {
                    self.at += 1;
                    out.push('"');
                }
                '"' => return Ok(out),
                '\\' => self.escape(&mut out)?,
                c => out.push(c),
            }
        }
    }

    /// The escape after a backslash: JSON's escapes; a backslash before anything else is
    /// kept, so that regular expressions such as `"\d+"` read as written.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let escaped = match self.peek(0) {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let c = self.unicode_escape()?;
                out.push(c);
                return Ok(());
            }
            _ => {
                out.push('\\');
                return Ok(());
            }
        };
        self.at += 1;
        out.push(escaped);
        Ok(())
    }

    /// `\uXXXX` (the position at `u`), with a following `\uXXXX` for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let Some(high) = self.hex4(1) else {
            return self.fail("invalid \\u escape");
        };
        self.at += 5;
        let pair = (0xD800..0xDC00).contains(&high)
            && self.peek(0) == Some('\\')
            && self.peek(1) == Some('u');
        let low = if pair {
            self.hex4(2).filter(|low| (0xDC00..0xE000).contains(low))
        } else {
            None
        };
        let code = match low {
            Some(low) => {
                self.at += 6;
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            None => high,
        };
        Ok(char::from_u32(code).unwrap_or('\u{FFFD}'))
    }

    /// The four hexadecimal digits `ahead` characters on, if they are.
    fn hex4(&self, ahead: usize) -> Option<u32> {
        let start = self.at + ahead;
        let digits = self.chars.get(start..start + 4)?;
        if !digits.iter().all(char::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(&digits.iter().collect::<String>(), 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::json::path::test_support::check;
    use crate::functions::json::path::JsonPath;

    use super::*;

    #[test]
    fn literals() {
        check("1", "null", &["1"]);
        check("-1", "null", &["-1"]);
        check("1.5", "null", &["1.5"]);
        check("1.2e3", "null", &["1200.0"]);
        check("2E-1", "null", &["0.2"]);
        check(".5", "null", &["0.5"]);
        check("1.", "null", &["1.0"]);
        check("true", "null", &["true"]);
        check("false", "null", &["false"]);
        check("null", "1", &["null"]);
        check("NaN", "null", &["NaN"]);
        check(r#""Some text""#, "null", &[r#""Some text""#]);
        check(r#""a\"b""#, "null", &[r#""a\"b""#]);
        check(r#""a""b""#, "null", &[r#""a\"b""#]);
        check(r#""\u00e9\n""#, "null", &["\"\u{e9}\\n\""]);
        check(r#""\ud83d\ude00""#, "null", &["\"\u{1F600}\""]);
        check(r#""\d""#, "null", &[r#""\\d""#]);
        let big = "9223372036854775807";
        let exact = JsonPath::parse(big).unwrap().evaluate(&Json::Null, &[]);
        assert_eq!(exact, Ok(vec![Json::Int(9_223_372_036_854_775_807)]));
        let beyond = "170141183460469231731687303715884105728";
        let inexact = JsonPath::parse(beyond).unwrap().evaluate(&Json::Null, &[]);
        assert!(matches!(inexact.as_deref(), Ok([Json::Float(_)])));
    }
}
