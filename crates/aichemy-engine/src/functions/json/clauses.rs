//! The SQL/JSON functions' own syntax, lowered on the token stream to calls of the internal
//! functions of `sql.rs` (sqlparser reads none of these clauses):
//!
//! ```text
//! json_exists(in [FORMAT JSON [ENCODING e]], 'path' [PASSING v AS n, …]
//!             [{TRUE|FALSE|UNKNOWN|ERROR} ON ERROR])
//!   → "$json_exists"(in, 'path', 'error=…', 'n', v, …)
//! json_value(in, 'path' [PASSING …] [RETURNING type]
//!            [{ERROR|NULL|DEFAULT d} ON EMPTY] [{ERROR|NULL|DEFAULT d} ON ERROR])
//!   → "$json_value"(in, 'path', 'type', 'on=…', d1, 'on=…', d2, 'n', v, …)
//! json_query(in, 'path' [PASSING …] [RETURNING type [FORMAT JSON [ENCODING e]]]
//!            [WITH [CONDITIONAL|UNCONDITIONAL] [ARRAY] WRAPPER | WITHOUT [ARRAY] WRAPPER]
//!            [{KEEP|OMIT} QUOTES [ON SCALAR STRING]]
//!            [{ERROR|NULL|EMPTY ARRAY|EMPTY OBJECT} ON EMPTY] [… ON ERROR])
//!   → "$json_query"(in, 'path', 'wrapper=…;quotes=…;empty=…;error=…;returning=…', …)
//! json_array(v [FORMAT JSON [ENCODING e]], … [{NULL|ABSENT} ON NULL] [RETURNING …])
//!   → "$json_array"('null=…;returning=…', v, …)
//! json_object([KEY] k VALUE v | k : v, … [{NULL|ABSENT} ON NULL]
//!             [{WITH|WITHOUT} UNIQUE [KEYS]] [RETURNING …])
//!   → "$json_object"('null=…;unique=…;returning=…', k, v, …)
//! ```
//!
//! A value written `FORMAT JSON` (and a `json_query` call given to `json_array` or
//! `json_object`, whose result is JSON) becomes `"$json_input"(v, 'encoding=e')`.

use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan, Whitespace};

use super::sql::{ARRAY, EXISTS, INPUT, OBJECT, QUERY, VALUE};

/// The functions this syntax serves, as `SHOW FUNCTIONS` lists them.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("json_exists", "scalar"),
    ("json_value", "scalar"),
    ("json_query", "scalar"),
    ("json_array", "scalar"),
    ("json_object", "scalar"),
];

type Tokens = Vec<TokenWithSpan>;

fn syntax(message: impl Into<String>) -> ParserError {
    ParserError::ParserError(message.into())
}

/// `tokens` with every SQL/JSON function call lowered.
pub(crate) fn lower(tokens: Tokens) -> Result<Tokens, ParserError> {
    if !tokens.iter().any(|t| call_name(t).is_some()) {
        return Ok(tokens);
    }
    lower_range(&tokens)
}

fn call_name(token: &TokenWithSpan) -> Option<&'static str> {
    let Token::Word(word) = &token.token else {
        return None;
    };
    if word.quote_style.is_some() {
        return None;
    }
    FUNCTIONS
        .iter()
        .map(|(name, _)| *name)
        .find(|name| word.value.eq_ignore_ascii_case(name))
}

fn significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|i| !matches!(tokens[*i].token, Token::Whitespace(_)))
}

fn lower_range(tokens: &[TokenWithSpan]) -> Result<Tokens, ParserError> {
    let closing = crate::dialect::closing_parens(tokens);
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let after_dot = i > 0 && tokens[i - 1].token == Token::Period;
        if let (Some(name), false) = (call_name(&tokens[i]), after_dot) {
            let open = significant(tokens, i + 1).filter(|o| tokens[*o].token == Token::LParen);
            if let Some(close) = open.and_then(|o| closing[o]) {
                let open = open.unwrap_or(i);
                let args = split_arguments(&tokens[open + 1..close])
                    .into_iter()
                    .map(|arg| lower_range(arg).map(|lowered| (is_json_query(arg), lowered)))
                    .collect::<Result<Vec<_>, _>>()?;
                let span = tokens[i].span;
                out.extend(lower_call(name, args, span)?);
                i = close + 1;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    Ok(out)
}

/// Whether an argument is one `json_query(…)` call (its result is JSON).
fn is_json_query(arg: &[TokenWithSpan]) -> bool {
    let Some(first) = significant(arg, 0) else {
        return false;
    };
    if call_name(&arg[first]) != Some("json_query") {
        return false;
    }
    let closing = crate::dialect::closing_parens(arg);
    let open = significant(arg, first + 1);
    let close = open.and_then(|o| closing.get(o).copied().flatten());
    close.is_some_and(|c| significant(arg, c + 1).is_none())
}

/// The arguments of a call: its tokens split at the commas outside brackets.
fn split_arguments(tokens: &[TokenWithSpan]) -> Vec<&[TokenWithSpan]> {
    if significant(tokens, 0).is_none() {
        return Vec::new();
    }
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                args.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(&tokens[start..]);
    args
}

/// A cursor over the tokens of one argument at its own nesting level.
struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    /// Indices of the significant tokens outside brackets.
    top: Vec<usize>,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(tokens: &'a [TokenWithSpan]) -> Self {
        let mut top = Vec::new();
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            match token.token {
                Token::Whitespace(_) => {}
                Token::LParen | Token::LBracket => {
                    if depth == 0 {
                        top.push(i);
                    }
                    depth += 1;
                }
                Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
                _ if depth == 0 => top.push(i),
                _ => {}
            }
        }
        Cursor { tokens, top, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.top.len()
    }

    /// The unquoted word `ahead` positions from the cursor, upper-cased.
    fn word(&self, ahead: usize) -> Option<String> {
        let index = *self.top.get(self.at + ahead)?;
        match &self.tokens[index].token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn is(&self, ahead: usize, word: &str) -> bool {
        self.word(ahead).as_deref() == Some(word)
    }

    fn token(&self, ahead: usize) -> Option<&Token> {
        self.top
            .get(self.at + ahead)
            .map(|i| &self.tokens[*i].token)
    }

    fn expect(&mut self, word: &str) -> Result<(), ParserError> {
        if self.is(0, word) {
            self.at += 1;
            Ok(())
        } else {
            Err(syntax(format!(
                "Expected: {word}, found: {}",
                self.token(0)
                    .map_or("end of arguments".into(), |t| t.to_string())
            )))
        }
    }

    fn skip(&mut self, word: &str) -> bool {
        let found = self.is(0, word);
        if found {
            self.at += 1;
        }
        found
    }

    /// The raw tokens from the cursor up to (not including) the first position at which
    /// `stop` holds; the cursor moves there.
    fn take_until(&mut self, stop: impl Fn(&Cursor) -> bool) -> Tokens {
        let start = self.top.get(self.at).copied().unwrap_or(self.tokens.len());
        while !self.done() && !stop(self) {
            self.at += 1;
        }
        let mut end = self.top.get(self.at).copied().unwrap_or(self.tokens.len());
        while end > start && matches!(self.tokens[end - 1].token, Token::Whitespace(_)) {
            end -= 1;
        }
        self.tokens[start..end].to_vec()
    }
}

fn text(tokens: &[TokenWithSpan]) -> String {
    tokens
        .iter()
        .map(|t| t.token.to_string())
        .collect::<String>()
        .trim()
        .to_string()
}

/// The clauses after a SQL/JSON function's arguments.
#[derive(Debug, Default)]
struct Clauses {
    options: Vec<(&'static str, String)>,
    /// `DEFAULT d ON EMPTY`, `DEFAULT d ON ERROR`.
    empty_default: Option<Tokens>,
    error_default: Option<Tokens>,
}

impl Clauses {
    fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.options.retain(|(n, _)| *n != name);
        self.options.push((name, value.into()));
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether the cursor stands at the start of a clause of `function`.
fn at_clause(cursor: &Cursor, function: &str) -> bool {
    let Some(word) = cursor.word(0) else {
        return false;
    };
    let next = cursor.word(1);
    let on_next = next.as_deref() == Some("ON");
    match word.as_str() {
        "RETURNING" => true,
        "ABSENT" => matches!(function, "json_array" | "json_object"),
        "NULL" => on_next,
        "WITH" | "WITHOUT" => match function {
            "json_object" => next.as_deref() == Some("UNIQUE"),
            "json_query" => true,
            _ => false,
        },
        "KEEP" | "OMIT" => function == "json_query",
        "ERROR" | "TRUE" | "FALSE" | "UNKNOWN" => on_next,
        "EMPTY" => function == "json_query",
        "DEFAULT" => function == "json_value",
        "PASSING" => matches!(function, "json_exists" | "json_value" | "json_query"),
        _ => false,
    }
}

/// Reads the clauses from the cursor to its end.
fn read_clauses(cursor: &mut Cursor, function: &str) -> Result<Clauses, ParserError> {
    let mut clauses = Clauses::default();
    while !cursor.done() {
        let word = cursor.word(0).unwrap_or_default();
        match word.as_str() {
            "RETURNING" => {
                cursor.at += 1;
                let ty = cursor.take_until(|c| {
                    (at_clause(c, function) && !(c.is(0, "WITH") && c.is(1, "TIME")))
                        || c.is(0, "FORMAT")
                });
                let ty = text(&ty).to_ascii_lowercase();
                if ty.is_empty() {
                    return Err(syntax("Expected: a type after RETURNING"));
                }
                clauses.set("returning", ty);
                if cursor.skip("FORMAT") {
                    read_format(cursor, &mut clauses)?;
                }
            }
            "NULL" | "ABSENT" if cursor.is(2, "NULL") => {
                cursor.at += 3;
                clauses.set("null", word.to_ascii_lowercase());
            }
            "WITH" | "WITHOUT" if cursor.is(1, "UNIQUE") => {
                cursor.at += 2;
                cursor.skip("KEYS");
                clauses.set("unique", word.to_ascii_lowercase());
            }
            "WITH" => {
                cursor.at += 1;
                let kind = if cursor.skip("CONDITIONAL") {
                    "conditional"
                } else {
                    cursor.skip("UNCONDITIONAL");
                    "unconditional"
                };
                cursor.skip("ARRAY");
                cursor.expect("WRAPPER")?;
                clauses.set("wrapper", kind);
            }
            "WITHOUT" => {
                cursor.at += 1;
                cursor.skip("ARRAY");
                cursor.expect("WRAPPER")?;
                clauses.set("wrapper", "without");
            }
            "KEEP" | "OMIT" => {
                cursor.at += 1;
                cursor.expect("QUOTES")?;
                if cursor.skip("ON") {
                    cursor.expect("SCALAR")?;
                    cursor.expect("STRING")?;
                }
                clauses.set("quotes", word.to_ascii_lowercase());
            }
            "ERROR" | "NULL" | "TRUE" | "FALSE" | "UNKNOWN" | "EMPTY" | "DEFAULT" => {
                cursor.at += 1;
                let behaviour = match word.as_str() {
                    "EMPTY" if cursor.skip("ARRAY") => "array".to_string(),
                    "EMPTY" => {
                        cursor.expect("OBJECT")?;
                        "object".to_string()
                    }
                    "DEFAULT" => "default".to_string(),
                    other => other.to_ascii_lowercase(),
                };
                let default = (word == "DEFAULT").then(|| {
                    cursor.take_until(|c| c.is(0, "ON") && (c.is(1, "EMPTY") || c.is(1, "ERROR")))
                });
                cursor.expect("ON")?;
                let target = if cursor.skip("EMPTY") {
                    "empty"
                } else {
                    cursor.expect("ERROR")?;
                    "error"
                };
                match (target, default) {
                    ("empty", Some(d)) => clauses.empty_default = Some(d),
                    (_, Some(d)) => clauses.error_default = Some(d),
                    _ => {}
                }
                clauses.set(target, behaviour);
            }
            _ => {
                return Err(syntax(format!(
                    "Unexpected {} in {function}",
                    cursor.token(0).map_or(String::new(), |t| t.to_string())
                )))
            }
        }
    }
    Ok(clauses)
}

/// `FORMAT JSON [ENCODING e]` after `FORMAT`.
fn read_format(cursor: &mut Cursor, clauses: &mut Clauses) -> Result<(), ParserError> {
    cursor.expect("JSON")?;
    if cursor.skip("ENCODING") {
        let encoding = cursor.word(0).unwrap_or_default();
        if !matches!(encoding.as_str(), "UTF8" | "UTF16" | "UTF32") {
            return Err(syntax(format!(
                "Expected: UTF8, UTF16 or UTF32, found: {encoding}"
            )));
        }
        cursor.at += 1;
        clauses.set("encoding", encoding);
    }
    Ok(())
}

struct Emit {
    span: Span,
}

impl Emit {
    fn token(&self, token: Token) -> TokenWithSpan {
        TokenWithSpan {
            token,
            span: self.span,
        }
    }

    fn string(&self, text: impl Into<String>) -> Tokens {
        vec![self.token(Token::SingleQuotedString(text.into()))]
    }

    fn null(&self) -> Tokens {
        vec![self.token(Token::make_keyword("NULL"))]
    }

    /// `"name"(arg, …)`.
    fn call(&self, name: &str, args: Vec<Tokens>) -> Tokens {
        let mut out = vec![
            self.token(Token::make_word(name, Some('"'))),
            self.token(Token::LParen),
        ];
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                out.push(self.token(Token::Comma));
                out.push(self.token(Token::Whitespace(Whitespace::Space)));
            }
            out.extend(arg);
        }
        out.push(self.token(Token::RParen));
        out
    }

    /// A value read as JSON text.
    fn json_input(&self, value: Tokens, encoding: Option<&str>) -> Tokens {
        let options = format!("encoding={}", encoding.unwrap_or(""));
        self.call(INPUT, vec![value, self.string(options)])
    }
}

/// A value with an optional `FORMAT JSON [ENCODING e]` after it; stops at the clauses of
/// `function`.
fn read_value(
    cursor: &mut Cursor,
    function: &str,
    emit: &Emit,
    is_json_query: bool,
) -> Result<Tokens, ParserError> {
    let value = cursor.take_until(|c| c.is(0, "FORMAT") || at_clause(c, function));
    if text(&value).is_empty() {
        return Err(syntax(format!("Expected: an argument of {function}")));
    }
    if cursor.skip("FORMAT") {
        let mut format = Clauses::default();
        read_format(cursor, &mut format)?;
        return Ok(emit.json_input(value, format.get("encoding")));
    }
    if is_json_query {
        return Ok(emit.json_input(value, None));
    }
    Ok(value)
}

fn lower_call(
    function: &'static str,
    args: Vec<(bool, Tokens)>,
    span: Span,
) -> Result<Tokens, ParserError> {
    let emit = Emit { span };
    match function {
        "json_array" => lower_array(args, &emit),
        "json_object" => lower_object(args, &emit),
        _ => lower_path_call(function, args, &emit),
    }
}

fn lower_array(args: Vec<(bool, Tokens)>, emit: &Emit) -> Result<Tokens, ParserError> {
    let mut values = Vec::new();
    let mut clauses = Clauses::default();
    let count = args.len();
    for (i, (is_query, arg)) in args.iter().enumerate() {
        let mut cursor = Cursor::new(arg);
        if !(i + 1 == count && at_clause(&cursor, "json_array")) {
            values.push(read_value(&mut cursor, "json_array", emit, *is_query)?);
        }
        if !cursor.done() {
            if i + 1 < count {
                return Err(syntax(
                    "Unexpected clause before the last argument of json_array",
                ));
            }
            clauses = read_clauses(&mut cursor, "json_array")?;
        }
    }
    let mut options = vec![format!("null={}", clauses.get("null").unwrap_or("absent"))];
    options.extend(returning(&clauses));
    let mut call_args = vec![emit.string(options.join(";"))];
    call_args.extend(values);
    Ok(emit.call(ARRAY, call_args))
}

fn returning(clauses: &Clauses) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(ty) = clauses.get("returning") {
        let ty = if ty.starts_with("varbinary") {
            "varbinary"
        } else {
            ty
        };
        options.push(format!("returning={ty}"));
    }
    if let Some(encoding) = clauses.get("encoding") {
        options.push(format!("encoding={encoding}"));
    }
    options
}

fn lower_object(args: Vec<(bool, Tokens)>, emit: &Emit) -> Result<Tokens, ParserError> {
    let mut members = Vec::new();
    let mut clauses = Clauses::default();
    let count = args.len();
    for (i, (is_query, arg)) in args.iter().enumerate() {
        let mut cursor = Cursor::new(arg);
        if !(i + 1 == count && at_clause(&cursor, "json_object")) {
            cursor.skip("KEY");
            let key = cursor.take_until(|c| c.is(0, "VALUE") || c.token(0) == Some(&Token::Colon));
            if cursor.done() || text(&key).is_empty() {
                return Err(syntax("Expected: KEY k VALUE v or k : v in json_object"));
            }
            cursor.at += 1;
            // A json_query call as the value is JSON, as it is in json_array.
            let value_tokens = &arg[cursor.top.get(cursor.at).copied().unwrap_or(arg.len())..];
            let is_query = *is_query || is_json_query_prefix(value_tokens);
            members.push(key);
            members.push(read_value(&mut cursor, "json_object", emit, is_query)?);
        }
        if !cursor.done() {
            if i + 1 < count {
                return Err(syntax(
                    "Unexpected clause before the last argument of json_object",
                ));
            }
            clauses = read_clauses(&mut cursor, "json_object")?;
        }
    }
    let mut options = vec![
        format!("null={}", clauses.get("null").unwrap_or("null")),
        format!("unique={}", clauses.get("unique").unwrap_or("without")),
    ];
    options.extend(returning(&clauses));
    let mut call_args = vec![emit.string(options.join(";"))];
    call_args.extend(members);
    Ok(emit.call(OBJECT, call_args))
}

/// Whether the tokens start with a lowered `json_query` call that ends before any clause.
fn is_json_query_prefix(tokens: &[TokenWithSpan]) -> bool {
    let Some(first) = significant(tokens, 0) else {
        return false;
    };
    matches!(&tokens[first].token, Token::Word(w) if w.quote_style == Some('"') && w.value == QUERY)
}

/// `json_exists`, `json_value` and `json_query`: input, path, `PASSING`, clauses.
fn lower_path_call(
    function: &'static str,
    args: Vec<(bool, Tokens)>,
    emit: &Emit,
) -> Result<Tokens, ParserError> {
    let mut args = args.into_iter();
    let (Some((_, input)), Some((_, path_arg))) = (args.next(), args.next()) else {
        return Err(syntax(format!(
            "Expected: an input and a JSON path in {function}"
        )));
    };
    let mut cursor = Cursor::new(&input);
    let input = read_value(&mut cursor, function, emit, false)?;
    if !cursor.done() {
        return Err(syntax(format!(
            "Unexpected clause after the input of {function}"
        )));
    }
    // The path, then `PASSING v AS n, …` whose commas split it over several arguments.
    let mut joined = path_arg;
    for (_, arg) in args {
        joined.push(emit.token(Token::Comma));
        joined.extend(arg);
    }
    let mut cursor = Cursor::new(&joined);
    let path = match cursor.token(0) {
        Some(Token::SingleQuotedString(_)) => {
            cursor.at += 1;
            let index = cursor.top[0];
            joined[index..=index].to_vec()
        }
        _ => {
            return Err(syntax(format!(
                "Expected: a JSON path literal in {function}"
            )))
        }
    };
    let mut parameters: Vec<Tokens> = Vec::new();
    if cursor.skip("PASSING") {
        loop {
            let value = cursor.take_until(|c| c.is(0, "AS"));
            cursor.expect("AS")?;
            let name = match cursor.token(0) {
                Some(Token::Word(w)) => w.value.clone(),
                _ => return Err(syntax("Expected: a parameter name after AS")),
            };
            cursor.at += 1;
            parameters.push(emit.string(name));
            parameters.push(value);
            if cursor.token(0) != Some(&Token::Comma) {
                break;
            }
            cursor.at += 1;
        }
    }
    let clauses = read_clauses(&mut cursor, function)?;
    let mut call_args = vec![input, path];
    let name = match function {
        "json_exists" => {
            let error = clauses.get("error").unwrap_or("false");
            call_args.push(emit.string(format!("error={error}")));
            EXISTS
        }
        "json_value" => {
            call_args.push(emit.string(clauses.get("returning").unwrap_or("")));
            for (target, default) in [
                ("empty", clauses.empty_default.clone()),
                ("error", clauses.error_default.clone()),
            ] {
                call_args
                    .push(emit.string(format!("on={}", clauses.get(target).unwrap_or("null"))));
                call_args.push(default.unwrap_or_else(|| emit.null()));
            }
            VALUE
        }
        _ => {
            let mut options = vec![
                format!("wrapper={}", clauses.get("wrapper").unwrap_or("without")),
                format!("quotes={}", clauses.get("quotes").unwrap_or("keep")),
                format!("empty={}", clauses.get("empty").unwrap_or("null")),
                format!("error={}", clauses.get("error").unwrap_or("null")),
            ];
            options.extend(returning(&clauses));
            call_args.push(emit.string(options.join(";")));
            QUERY
        }
    };
    call_args.extend(parameters);
    Ok(emit.call(name, call_args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(sql: &str) -> String {
        let tokens =
            datafusion::sql::sqlparser::tokenizer::Tokenizer::new(&crate::dialect::dialect(), sql)
                .tokenize_with_location()
                .unwrap();
        text(&lower(tokens).unwrap())
    }

    #[test]
    fn clauses_become_arguments() {
        assert_eq!(
            lowered("SELECT json_query(d, 'lax $.a[*]' WITH ARRAY WRAPPER EMPTY ARRAY ON EMPTY)"),
            "SELECT \"$json_query\"(d, 'lax $.a[*]', 'wrapper=unconditional;quotes=keep;empty=array;error=null')"
        );
        assert_eq!(
            lowered("SELECT json_value(d, 'lax $.c' RETURNING char(12) DEFAULT 'x' ON ERROR)"),
            "SELECT \"$json_value\"(d, 'lax $.c', 'char(12)', 'on=null', NULL, 'on=default', 'x')"
        );
        assert_eq!(
            lowered("SELECT json_exists(d, 'strict $.a' UNKNOWN ON ERROR)"),
            "SELECT \"$json_exists\"(d, 'strict $.a', 'error=unknown')"
        );
        assert_eq!(
            lowered(
                "SELECT json_object('x' : null, KEY 'y' VALUE 1 ABSENT ON NULL WITH UNIQUE KEYS)"
            ),
            "SELECT \"$json_object\"('null=absent;unique=with', 'x', null, 'y', 1)"
        );
        assert_eq!(
            lowered("SELECT json_array(true, null, 1 NULL ON NULL RETURNING VARBINARY FORMAT JSON ENCODING UTF16)"),
            "SELECT \"$json_array\"('null=null;returning=varbinary;encoding=UTF16', true, null, 1)"
        );
        assert_eq!(
            lowered("SELECT json_array(json_query(d, 'lax $.k'), '[1]' FORMAT JSON)"),
            "SELECT \"$json_array\"('null=absent', \"$json_input\"(\"$json_query\"(d, 'lax $.k', 'wrapper=without;quotes=keep;empty=null;error=null'), 'encoding='), \"$json_input\"('[1]', 'encoding='))"
        );
        assert_eq!(
            lowered("SELECT json_value(d, 'lax $.a + $x' PASSING 1 AS x, 2 AS \"Y\" NULL ON EMPTY)"),
            "SELECT \"$json_value\"(d, 'lax $.a + $x', '', 'on=null', NULL, 'on=null', NULL, 'x', 1, 'Y', 2)"
        );
        assert_eq!(
            lowered("SELECT json_array()"),
            "SELECT \"$json_array\"('null=absent')"
        );
    }

    #[test]
    fn bad_clauses_are_syntax_errors() {
        for sql in [
            "SELECT json_query(d, 'lax $' WITH ARRAY)",
            "SELECT json_value(d, 'lax $' DEFAULT 1)",
            "SELECT json_exists(d)",
            "SELECT json_object('a' 1)",
            "SELECT json_value(d, path_column)",
        ] {
            let tokens = datafusion::sql::sqlparser::tokenizer::Tokenizer::new(
                &crate::dialect::dialect(),
                sql,
            )
            .tokenize_with_location()
            .unwrap();
            assert!(lower(tokens).is_err(), "{sql}");
        }
    }
}
