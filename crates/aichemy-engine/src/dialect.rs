//! Trino SQL on top of sqlparser's generic dialect.
//!
//! Before DataFusion sees a statement (its text tokenized once, the parser reading the
//! rewritten tokens):
//! - type syntax: Trino writes `ARRAY(T)` and `ROW(name T, …)`; the token stream is
//!   rewritten to the generic dialect's `ARRAY<T>` and `STRUCT<name T, …>`;
//! - parse errors are reported as Trino does: `SYNTAX_ERROR` with `line L:C: …`;
//! - lambdas (`x -> x * 2`) are lowered to the functions in [`crate::functions::lambda`];
//! - `CAST(ROW(…) AS ROW(…))` matches fields by position, as Trino does, where DataFusion
//!   would match them by name.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, AccessExpr, ArrayElemTypeDef, CastKind,
    CharacterLength, DataType, ExactNumberInfo, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident,
    LimitClause, ObjectName, ObjectNamePart, OrderByKind, Query, SelectItem, SetExpr, Statement,
    TableFactor, TimezoneInfo, UnaryOperator, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::error::{ErrorCode, ErrorLocation, Result, TrinoError};
use crate::functions::lambda::{capture_name, param_name, LambdaKind};
use crate::trino_dialect::TrinoDialect;

/// The dialect statements are parsed with.
pub fn dialect() -> TrinoDialect {
    TrinoDialect::default()
}

/// The property that carries a table comment written Trino's way.
pub const TABLE_COMMENT_PROPERTY: &str = "$comment";

/// The tokens of `sql` as the parser reads them: tokenized once, with Trino's type syntax
/// (`ARRAY(T)`, `ROW(a T)`) rewritten to the generic dialect's (`ARRAY<T>`,
/// `STRUCT<a T>`) and `CREATE TABLE … COMMENT 'c' [WITH (…)]` (an order sqlparser does not
/// accept) turned into a `WITH` property. Every token keeps its place in `sql`, so that
/// errors point into the text as written.
pub fn tokens(sql: &str) -> std::result::Result<Vec<TokenWithSpan>, ParserError> {
    let mut tokens = Tokenizer::new(&dialect(), sql).tokenize_with_location()?;
    // Digit separators (`10_000`) are only for the eye.
    for token in &mut tokens {
        if let Token::Number(digits, _) = &mut token.token {
            digits.retain(|c| c != '_');
        }
    }
    // A method named by a keyword (`'x'.trim()`, `.substring(2)`) is read as a name.
    for i in 1..tokens.len().saturating_sub(1) {
        let (before, rest) = tokens.split_at_mut(i);
        let (word, after) = rest.split_at_mut(1);
        if before[i - 1].token != Token::Period || after[0].token != Token::LParen {
            continue;
        }
        if let Token::Word(w) = &mut word[0].token {
            if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword {
                w.value = w.value.to_ascii_lowercase();
                w.quote_style = Some('"');
                w.keyword = Keyword::NoKeyword;
            }
        }
    }
    let tokens = crate::functions::json::clauses::lower(tokens)?;
    let tokens = quantified_values(tokens);
    let tokens = typed_text_literals(tokens);
    let tokens = at_local_and_type_prefixes(tokens);
    let tokens = corresponding_by_name(tokens);
    let tokens = time_travel(tokens);
    let tokens = view_security(tokens);
    let tokens = row_fields_star(tokens);
    let tokens = parenthesize_values(tokens);
    let tokens = trim_spaces_by_default(tokens);
    let mut tokens = move_table_comment(tokens);
    let significant = |tokens: &[TokenWithSpan], i: usize| -> Option<usize> {
        (i..tokens.len()).find(|j| !matches!(tokens[*j].token, Token::Whitespace(_)))
    };
    let closing = closing_parens(&tokens);
    for i in 0..tokens.len() {
        let Token::Word(word) = &tokens[i].token else {
            continue;
        };
        if word.quote_style.is_some() {
            continue;
        }
        let keyword = word.value.to_ascii_uppercase();
        let Some(open) = significant(&tokens, i + 1) else {
            continue;
        };
        if tokens[open].token != Token::LParen {
            continue;
        }
        let is_type = match keyword.as_str() {
            "ARRAY" => true,
            // ROW(name type, …) is a type; ROW(1, 2) and ROW(a, b) are values.
            "ROW" => {
                let first = significant(&tokens, open + 1);
                let second = first.and_then(|f| significant(&tokens, f + 1));
                matches!(
                    (
                        first.map(|f| &tokens[f].token),
                        second.map(|s| &tokens[s].token)
                    ),
                    (Some(Token::Word(_)), Some(Token::Word(_)))
                ) && first.is_some_and(|f| {
                    matches!(
                        tokens.get(f + 1).map(|t| &t.token),
                        Some(Token::Whitespace(_))
                    )
                })
            }
            _ => false,
        };
        if !is_type {
            continue;
        }
        let Some(close) = closing[open] else {
            continue;
        };
        if keyword == "ROW" {
            tokens[i].token = Token::make_word("STRUCT", None);
        }
        tokens[open].token = Token::Lt;
        tokens[close].token = Token::Gt;
    }
    Ok(tokens)
}

/// An unquoted word's text in upper case (`VALUES`, `ANY`), for the token passes below.
fn bare_word(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// The positions of the tokens that are not whitespace.
fn significant_positions(tokens: &[TokenWithSpan]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect()
}

/// `UNION [ALL] CORRESPONDING` (also `INTERSECT`, `EXCEPT`) spelled `… BY NAME`, which the
/// parser reads; Trino has no `BY NAME`, so the planner takes every `BY NAME` for
/// `CORRESPONDING` (see `planner::corresponding`).
fn corresponding_by_name(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = bare_word;
    let significant = significant_positions(&tokens);
    let mut at = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        if word(&tokens[i]).as_deref() != Some("CORRESPONDING") || n == 0 {
            continue;
        }
        let mut before = significant[n - 1];
        if matches!(word(&tokens[before]).as_deref(), Some("ALL" | "DISTINCT")) && n >= 2 {
            before = significant[n - 2];
        }
        if matches!(
            word(&tokens[before]).as_deref(),
            Some("UNION" | "INTERSECT" | "EXCEPT")
        ) {
            at.push(i);
        }
    }
    for i in at.into_iter().rev() {
        let span = tokens[i].span;
        tokens[i] = TokenWithSpan::new(Token::make_keyword("BY"), span);
        tokens.insert(i + 1, TokenWithSpan::new(Token::make_keyword("NAME"), span));
        tokens.insert(
            i + 1,
            TokenWithSpan::new(Token::Whitespace(Whitespace::Space), span),
        );
    }
    tokens
}

/// The view option that carries `SECURITY INVOKER` to [`crate::statement::ddl`].
pub const VIEW_SECURITY_OPTION: &str = "$security";

/// `CREATE VIEW v SECURITY DEFINER|INVOKER AS …`, which the parser does not take: DEFINER
/// (Trino's default) is dropped, INVOKER becomes the view option `"$security" = 'INVOKER'`.
fn view_security(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = significant_positions(&tokens);
    let mut clauses = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        let word = |k: usize| significant.get(n + k).and_then(|&j| bare_word(&tokens[j]));
        if word(0).as_deref() == Some("SECURITY")
            && matches!(word(1).as_deref(), Some("DEFINER" | "INVOKER"))
            && word(2).as_deref() == Some("AS")
        {
            clauses.push((i, significant[n + 1], word(1).as_deref() == Some("INVOKER")));
        }
    }
    for (security, mode, invoker) in clauses.into_iter().rev() {
        let span = tokens[security].span;
        tokens.remove(mode);
        tokens.remove(security);
        if invoker {
            let option = [
                Token::make_keyword("WITH"),
                Token::LParen,
                Token::make_word(VIEW_SECURITY_OPTION, Some('"')),
                Token::Eq,
                Token::SingleQuotedString("INVOKER".into()),
                Token::RParen,
                Token::Whitespace(Whitespace::Space),
            ];
            for (k, token) in option.into_iter().enumerate() {
                tokens.insert(security + k, TokenWithSpan::new(token, span));
            }
        }
    }
    tokens
}

/// Trino's `FOR VERSION AS OF` and `FOR TIMESTAMP AS OF` after a table, without the `FOR`
/// that the parser's `VERSION AS OF`/`TIMESTAMP AS OF` do not take; `FOR VERSION AS OF
/// 'name'` (a branch or tag, which the parser's `VERSION AS OF` refuses: it takes numbers)
/// as `FOR SYSTEM_TIME AS OF 'name'`, which the planner reads back as the name.
fn time_travel(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = significant_positions(&tokens);
    let mut drop = Vec::new();
    let mut named = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        let word = |k: usize| significant.get(n + k).and_then(|&j| bare_word(&tokens[j]));
        if word(0).as_deref() == Some("FOR")
            && matches!(word(1).as_deref(), Some("VERSION" | "TIMESTAMP"))
            && word(2).as_deref() == Some("AS")
            && word(3).as_deref() == Some("OF")
        {
            let name = significant
                .get(n + 4)
                .is_some_and(|&j| matches!(tokens[j].token, Token::SingleQuotedString(_)));
            if word(1).as_deref() == Some("VERSION") && name {
                named.push(significant[n + 1]);
            } else {
                drop.push(i);
            }
        }
    }
    for i in named {
        tokens[i].token = Token::make_keyword("SYSTEM_TIME");
    }
    for i in drop.into_iter().rev() {
        tokens.remove(i);
    }
    tokens
}

/// `x AT LOCAL` as `x AT TIME ZONE current_timezone()` (bound to the session's zone), and a
/// function named with its type's prefix (`varchar::chr(65)`, `varchar::from_utf8(x)`) as the
/// function alone: Trino has no `::` cast, and the prefix only places the function.
fn at_local_and_type_prefixes(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = significant_positions(&tokens);
    let mut drop = vec![false; tokens.len()];
    let mut local = vec![false; tokens.len()];
    for (n, &i) in significant.iter().enumerate() {
        let next = |k: usize| significant.get(n + k).map(|&j| &tokens[j]);
        if bare_word(&tokens[i]).as_deref() == Some("AT")
            && next(1).and_then(bare_word).as_deref() == Some("LOCAL")
        {
            local[significant[n + 1]] = true;
        }
        let (Some(colons), Some(function), Some(open)) = (next(1), next(2), next(3)) else {
            continue;
        };
        // The type check parses a name: only where the tokens have the prefix's shape.
        if matches!(tokens[i].token, Token::Word(_))
            && colons.token == Token::DoubleColon
            && open.token == Token::LParen
            && matches!(&function.token, Token::Word(w) if w.quote_style.is_none()
                && crate::types::parse_type_name(&w.value).is_err())
        {
            drop[i..significant[n + 2]].fill(true);
        }
    }
    let mut out = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.into_iter().enumerate() {
        if drop[i] {
            continue;
        }
        if local[i] {
            let span = token.span;
            let space = || TokenWithSpan::new(Token::Whitespace(Whitespace::Space), span);
            out.push(TokenWithSpan::new(Token::make_keyword("TIME"), span));
            out.push(space());
            out.push(TokenWithSpan::new(Token::make_keyword("ZONE"), span));
            out.push(space());
            out.push(TokenWithSpan::new(
                Token::make_word("current_timezone", None),
                span,
            ));
            out.push(TokenWithSpan::new(Token::LParen, span));
            out.push(TokenWithSpan::new(Token::RParen, span));
            continue;
        }
        out.push(token);
    }
    out
}

/// `IPADDRESS '10.0.0.1'` as `CAST('10.0.0.1' AS IPADDRESS)`, `NUMBER '1e3'` as
/// `CAST('1e3' AS NUMBER)`: the parser knows no such typed literals.
fn typed_text_literals(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_ipaddress = |t: &TokenWithSpan| {
        matches!(&t.token, Token::Word(w) if w.quote_style.is_none()
            && (w.value.eq_ignore_ascii_case("ipaddress") || w.value.eq_ignore_ascii_case("number")))
    };
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let next =
            (i + 1..tokens.len()).find(|&j| !matches!(tokens[j].token, Token::Whitespace(_)));
        let literal = next.filter(|&j| matches!(tokens[j].token, Token::SingleQuotedString(_)));
        match literal {
            Some(j) if is_ipaddress(&tokens[i]) => {
                let span = tokens[i].span;
                let token = |t: Token| TokenWithSpan::new(t, span);
                out.push(token(Token::make_keyword("CAST")));
                out.push(token(Token::LParen));
                out.push(tokens[j].clone());
                out.push(token(Token::Whitespace(Whitespace::Space)));
                out.push(token(Token::make_keyword("AS")));
                out.push(token(Token::Whitespace(Whitespace::Space)));
                out.push(tokens[i].clone());
                out.push(token(Token::RParen));
                i = j + 1;
            }
            _ => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// `(row).*` as `unnest((row))`, which DataFusion expands into the row's fields as columns.
fn row_fields_star(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = significant_positions(&tokens);
    let closing = closing_parens(&tokens);
    // (open, dot, star) of each `( … ).*`
    let mut stars = Vec::new();
    for window in significant.windows(3) {
        let [close, dot, star] = [window[0], window[1], window[2]];
        if tokens[close].token == Token::RParen
            && tokens[dot].token == Token::Period
            && tokens[star].token == Token::Mul
        {
            if let Some(open) = closing.iter().position(|c| *c == Some(close)) {
                stars.push((open, dot, star));
            }
        }
    }
    for (open, dot, star) in stars.into_iter().rev() {
        if let Some((names, end)) = column_aliases(&tokens, &significant, star) {
            // `(row).* AS (a, b)`: each field by its position, under its alias.
            let close = closing[open].unwrap_or(dot);
            let row: Vec<TokenWithSpan> = tokens[open..=close].to_vec();
            let span = tokens[open].span;
            let token = |t: Token| TokenWithSpan::new(t, span);
            let mut fields = Vec::new();
            for (k, name) in names.into_iter().enumerate() {
                if k > 0 {
                    fields.push(token(Token::Comma));
                }
                fields.push(token(Token::make_word(ROW_FIELD, Some('"'))));
                fields.push(token(Token::LParen));
                fields.extend(row.iter().cloned());
                fields.push(token(Token::Comma));
                fields.push(token(Token::Number((k + 1).to_string(), false)));
                fields.push(token(Token::RParen));
                fields.push(token(Token::Whitespace(Whitespace::Space)));
                fields.push(token(Token::make_keyword("AS")));
                fields.push(token(Token::Whitespace(Whitespace::Space)));
                fields.push(name);
            }
            tokens.splice(open..=end, fields);
            continue;
        }
        tokens.remove(star);
        tokens.remove(dot);
        let span = tokens[open].span;
        tokens.insert(open, TokenWithSpan::new(Token::LParen, span));
        tokens.insert(
            open,
            TokenWithSpan::new(Token::make_word("unnest", None), span),
        );
        // the closing parenthesis moved by the two tokens inserted before it
        let close = closing[open].map(|c| c + 2).unwrap_or(open + 2);
        tokens.insert(close + 1, TokenWithSpan::new(Token::RParen, span));
    }
    tokens
}

/// The function of one field of a row by its 1-based position (`functions::RowField`).
pub(crate) const ROW_FIELD: &str = "$row_field";

/// The names of `AS (a, b, …)` right after the token at `star`, and the position of its
/// closing parenthesis.
fn column_aliases(
    tokens: &[TokenWithSpan],
    significant: &[usize],
    star: usize,
) -> Option<(Vec<TokenWithSpan>, usize)> {
    let at = significant.iter().position(|&i| i == star)?;
    let mut rest = significant[at + 1..].iter().map(|&i| (i, &tokens[i]));
    let (_, as_word) = rest.next()?;
    if bare_word(as_word).as_deref() != Some("AS") || rest.next()?.1.token != Token::LParen {
        return None;
    }
    let mut names = Vec::new();
    loop {
        let (_, name) = rest.next()?;
        if !matches!(name.token, Token::Word(_)) {
            return None;
        }
        names.push(name.clone());
        match rest.next()? {
            (_, t) if t.token == Token::Comma => continue,
            (end, t) if t.token == Token::RParen => return Some((names, end)),
            _ => return None,
        }
    }
}

/// `x = ANY (VALUES 1, 2)` (also `SOME`, `ALL`) as `x = ANY (SELECT * FROM (VALUES 1, 2))`:
/// the generic dialect takes only a query starting with SELECT there.
fn quantified_values(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = bare_word;
    let significant = significant_positions(&tokens);
    let closing = closing_parens(&tokens);
    // (the open parenthesis, its closing one)
    let mut wraps = Vec::new();
    for window in significant.windows(3) {
        let [quantifier, open, values] = [window[0], window[1], window[2]];
        if matches!(
            word(&tokens[quantifier]).as_deref(),
            Some("ANY" | "SOME" | "ALL")
        ) && tokens[open].token == Token::LParen
            && word(&tokens[values]).as_deref() == Some("VALUES")
        {
            if let Some(close) = closing[open] {
                wraps.push((open, close));
            }
        }
    }
    if wraps.is_empty() {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len() + wraps.len() * 8);
    for (i, token) in tokens.into_iter().enumerate() {
        let span = token.span;
        let closes = wraps.iter().any(|(_, close)| *close == i);
        if closes {
            out.push(TokenWithSpan::new(Token::RParen, span));
        }
        let opens = wraps.iter().any(|(open, _)| *open == i);
        out.push(token);
        if opens {
            let space = || TokenWithSpan::new(Token::Whitespace(Whitespace::Space), span);
            for t in [
                Token::make_keyword("SELECT"),
                Token::Mul,
                Token::make_keyword("FROM"),
                Token::LParen,
            ] {
                out.push(TokenWithSpan::new(t, span));
                out.push(space());
            }
        }
    }
    out
}

/// `trim(LEADING FROM x)` (and `TRAILING`, `BOTH`) as `trim(LEADING ' ' FROM x)`: Trino
/// trims spaces when no characters are named; the generic dialect requires them.
fn trim_spaces_by_default(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let word = bare_word;
    let significant = significant_positions(&tokens);
    let mut inserts = Vec::new();
    for window in significant.windows(4) {
        let [trim, open, side, from] = [window[0], window[1], window[2], window[3]];
        if word(&tokens[trim]).as_deref() == Some("TRIM")
            && tokens[open].token == Token::LParen
            && matches!(
                word(&tokens[side]).as_deref(),
                Some("LEADING" | "TRAILING" | "BOTH")
            )
            && word(&tokens[from]).as_deref() == Some("FROM")
        {
            inserts.push(from);
        }
    }
    for at in inserts.into_iter().rev() {
        let span = tokens[at].span;
        tokens.insert(
            at,
            TokenWithSpan::new(Token::Whitespace(Whitespace::Space), span),
        );
        tokens.insert(
            at,
            TokenWithSpan::new(Token::SingleQuotedString(" ".into()), span),
        );
    }
    tokens
}

/// Trino's `VALUES 1, 2` (each row one expression, without parentheses) as the generic
/// dialect's `VALUES (1), (2)`.
fn parenthesize_values(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is_word = |t: &TokenWithSpan, w: &str| matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let blank = |t: &TokenWithSpan| matches!(t.token, Token::Whitespace(_));
    let ends_list = |t: &TokenWithSpan| {
        matches!(t.token, Token::SemiColon | Token::EOF)
            || [
                "ORDER",
                "LIMIT",
                "OFFSET",
                "FETCH",
                "UNION",
                "EXCEPT",
                "INTERSECT",
                "WINDOW",
            ]
            .iter()
            .any(|w| is_word(t, w))
    };
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        out.push(token.clone());
        i += 1;
        if !is_word(token, "VALUES") {
            continue;
        }
        let Some(first) = (i..tokens.len()).find(|&j| !blank(&tokens[j])) else {
            continue;
        };
        if matches!(
            tokens[first].token,
            Token::LParen | Token::EOF | Token::SemiColon
        ) {
            continue;
        }
        // Each item at this depth up to the list's end becomes `(item)`.
        out.extend(tokens[i..first].iter().cloned());
        i = first;
        let mut depth = 0usize;
        out.push(TokenWithSpan::new(Token::LParen, tokens[i].span));
        while i < tokens.len() {
            let t = &tokens[i];
            match t.token {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket if depth == 0 => break,
                Token::RParen | Token::RBracket => depth -= 1,
                Token::Comma if depth == 0 => {
                    out.push(TokenWithSpan::new(Token::RParen, t.span));
                    out.push(t.clone());
                    out.push(TokenWithSpan::new(Token::LParen, t.span));
                    i += 1;
                    continue;
                }
                _ if depth == 0 && ends_list(t) => break,
                _ => {}
            }
            out.push(t.clone());
            i += 1;
        }
        let span = tokens.get(i).map_or(tokens[i - 1].span, |t| t.span);
        out.push(TokenWithSpan::new(Token::RParen, span));
    }
    out
}

/// Moves a top-level table `COMMENT '…'` of a CREATE TABLE into its `WITH (…)` list.
fn move_table_comment(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|i| !matches!(tokens[*i].token, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, w: &str| matches!(&tokens[i].token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let is_create_table = significant.len() > 2
        && word(significant[0], "CREATE")
        && significant[1..significant.len().min(4)]
            .iter()
            .any(|i| word(*i, "TABLE"));
    if !is_create_table {
        return tokens;
    }
    let (mut depth, mut comment, mut with) = (0i32, None, None);
    for (n, &i) in significant.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && word(i, "AS") => break,
            _ if depth == 0 && word(i, "COMMENT") => {
                if let Some(&text) = significant.get(n + 1) {
                    if matches!(tokens[text].token, Token::SingleQuotedString(_)) {
                        comment = Some((i, text));
                    }
                }
            }
            _ if depth == 0
                && word(i, "WITH")
                && significant
                    .get(n + 1)
                    .is_some_and(|o| tokens[*o].token == Token::LParen) =>
            {
                with = Some(significant[n + 1]);
            }
            _ => {}
        }
    }
    let Some((keyword, text)) = comment else {
        return tokens;
    };
    let span = tokens[keyword].span;
    let at = |token: Token| TokenWithSpan::new(token, span);
    let property = [
        at(Token::make_word(TABLE_COMMENT_PROPERTY, Some('"'))),
        at(Token::Eq),
        tokens[text].clone(),
    ];
    let blank = at(Token::Whitespace(Whitespace::Space));
    tokens[keyword] = blank.clone();
    tokens[text] = blank;
    match with {
        Some(open) => {
            let closes_at_once = tokens[open + 1..]
                .iter()
                .find(|t| !matches!(t.token, Token::Whitespace(_)))
                .is_some_and(|t| t.token == Token::RParen);
            let separator = (!closes_at_once).then(|| at(Token::Comma));
            tokens.splice(open + 1..open + 1, property.into_iter().chain(separator));
        }
        None => {
            let clause = [at(Token::make_keyword("WITH")), at(Token::LParen)]
                .into_iter()
                .chain(property)
                .chain([at(Token::RParen)]);
            tokens.splice(keyword..keyword + 1, clause);
        }
    }
    tokens
}

/// For each `(`, the position of the `)` that closes it, found in one pass (a search per
/// parenthesis would take time quadratic in their nesting).
pub(crate) fn closing_parens(tokens: &[TokenWithSpan]) -> Vec<Option<usize>> {
    let mut closing = vec![None; tokens.len()];
    let mut open = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.token {
            Token::LParen => open.push(i),
            Token::RParen => {
                if let Some(at) = open.pop() {
                    closing[at] = Some(i);
                }
            }
            _ => {}
        }
    }
    closing
}

/// How deeply expressions and queries may nest in one statement: the parser's recursion
/// limit, and the depth of the parsed tree (a 300-term sum is 300 deep though it parses
/// without recursion). Every later step — lambda lowering, planning, optimizing,
/// evaluating — recurses along that depth, so a bound here keeps each within the stack of
/// the query threads ([`crate::execution::QUERY_THREAD_STACK_BYTES`]). Deeper statements
/// fail with Trino's `STACK_OVERFLOW`, as Trino's own analyzer does on its stack's limit.
pub const MAX_NESTING: usize = 1000;

/// Parses Trino SQL text into statements, with lambdas lowered.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>> {
    let tokens = tokens(sql).map_err(syntax_error)?;
    let (tokens, routines) = crate::inline_functions::take_routines(tokens)?;
    let nesting = token_nesting(&tokens);
    let dialect = dialect();
    let parsed = Parser::new(&dialect)
        .with_recursion_limit(MAX_NESTING + PARSER_LEVELS_ABOVE_EXPRESSIONS)
        .with_tokens_with_locations(tokens)
        .parse_statements();
    let mut statements = match parsed {
        Ok(statements) => statements,
        Err(_) if dialect.exhausted() => return Err(too_complex()),
        // Past its recursion limit the parser may report what it met next instead.
        Err(_) if nesting > MAX_NESTING => return Err(too_deeply_nested()),
        Err(e) => return Err(syntax_error(e)),
    };
    for statement in &statements {
        check_nesting(statement)?;
    }
    for statement in &mut statements {
        crate::inline_functions::inline(statement, &routines)?;
        let _ = visit_expressions_mut(statement, |expr| {
            method_calls(expr);
            // Before lambdas are lowered: their bodies become text then.
            computed_subscript(expr);
            regexp_replace_with_function(expr);
            reduce_agg(expr);
            name_row_cast(expr);
            ControlFlow::<()>::Continue(())
        });
        crate::functions::rewrites::rewrite(statement)?;
        lower_lambdas(statement)?;
        let _ = visit_expressions_mut(statement, |expr| {
            json_literal_and_casts(expr);
            type_decimal_literal(expr);
            type_double_literal(expr);
            type_timestamp_literal(expr);
            temporal_precision(expr);
            cast_to_char(expr);
            type_year_month_interval(expr);
            bare_clock_function(expr);
            constant_quantified_comparison(expr);
            unicode_literal_and_empty_map(expr);
            ControlFlow::<()>::Continue(())
        });
        let _ = statement.visit(&mut Ordinality);
        crate::vector_search::rewrite(statement)?;
        let _ = statement.visit(&mut QueryClauses);
        match statement {
            Statement::Query(query) => name_output_columns(query),
            Statement::CreateView(view) => name_output_columns(&mut view.query),
            _ => {}
        }
    }
    Ok(statements)
}

/// The values of Trino's session functions for one statement.
#[derive(Debug, Clone, Default)]
pub struct SessionValues {
    pub user: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub time_zone: String,
}

/// The functions written as syntax rather than calls (`CAST(x AS t)`) and the session
/// functions [`bind_session_functions`] binds, as `SHOW FUNCTIONS` lists them.
pub const SYNTAX_FUNCTIONS: &[(&str, &str)] = &[
    ("cast", "scalar"),
    ("try_cast", "scalar"),
    ("extract", "scalar"),
    ("current_user", "scalar"),
    ("current_catalog", "scalar"),
    ("current_schema", "scalar"),
    ("current_timezone", "scalar"),
    ("reduce_agg", "aggregate"),
];

/// Replaces Trino's session functions by their values: `current_user`, `current_catalog`,
/// `current_schema` (written without parentheses) and `current_timezone()`.
pub fn bind_session_functions(statement: &mut Statement, values: &SessionValues) {
    let text = |value: &Option<String>| match value {
        Some(v) => Expr::Value(Value::SingleQuotedString(v.clone()).into()),
        None => Expr::Value(Value::Null.into()),
    };
    let _ = visit_expressions_mut(statement, |expr| {
        let name = match expr {
            Expr::Function(f) if f.name.0.len() == 1 => {
                let parens = !matches!(f.args, FunctionArguments::None);
                match f.name.0[0].as_ident() {
                    Some(ident) if ident.quote_style.is_none() => {
                        Some((ident.value.to_ascii_lowercase(), parens))
                    }
                    _ => None,
                }
            }
            Expr::Identifier(ident) if ident.quote_style.is_none() => {
                Some((ident.value.to_ascii_lowercase(), false))
            }
            _ => None,
        };
        let replacement = match name.as_ref().map(|(n, p)| (n.as_str(), *p)) {
            Some(("current_user", false)) => Some(text(&Some(values.user.clone()))),
            Some(("current_catalog", false)) => Some(text(&values.catalog)),
            Some(("current_schema", false)) => Some(text(&values.schema)),
            Some(("current_timezone", true)) => Some(text(&Some(values.time_zone.clone()))),
            _ => None,
        };
        if let Some(replacement) = replacement {
            *expr = replacement;
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `expr` is a `?` parameter.
fn is_parameter(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if matches!(&v.value, Value::Placeholder(p) if p == "?"))
}

/// For each `?` parameter of a statement, in the order the tree is visited, its rank in the
/// order the text writes them (where they start).
fn parameter_ranks(statement: &Statement) -> Vec<usize> {
    let mut starts = Vec::new();
    let _ = visit_expressions(statement, |expr| {
        if let Expr::Value(value) = expr {
            if is_parameter(expr) {
                starts.push((value.span.start, starts.len()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut by_start: Vec<usize> = (0..starts.len()).collect();
    by_start.sort_by_key(|&i| starts[i]);
    let mut ranks = vec![0; starts.len()];
    for (rank, visited) in by_start.into_iter().enumerate() {
        ranks[visited] = rank;
    }
    ranks
}

/// How many `?` parameters a statement has.
pub fn count_parameters(statement: &Statement) -> usize {
    parameter_ranks(statement).len()
}

/// Trino's error when a statement with `expected` parameters is given `found` values.
pub fn check_parameter_count(expected: usize, found: usize) -> Result<()> {
    if expected == found {
        return Ok(());
    }
    Err(TrinoError::new(
        ErrorCode::INVALID_PARAMETER_USAGE,
        format!("Incorrect number of parameters: expected {expected} but found {found}"),
    ))
}

/// Replaces the `?` parameters of a parsed statement, in the order the text writes them,
/// by `values` (`EXECUTE … USING …`); Trino's error when the counts differ.
pub fn bind_parameters(statement: &mut Statement, values: &[Expr]) -> Result<()> {
    let ranks = parameter_ranks(statement);
    check_parameter_count(ranks.len(), values.len())?;
    let mut ranks = ranks.into_iter();
    let _ = visit_expressions_mut(statement, |expr| {
        if is_parameter(expr) {
            let rank = ranks.next().expect("counted");
            *expr = Expr::Nested(Box::new(values[rank].clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    // The values nest inside the statement.
    check_nesting(statement)
}

/// Splits a script into statement texts at top-level semicolons (outside quotes and comments).
pub fn split_statements(sql: &str) -> Vec<String> {
    let dialect = dialect();
    let Ok(tokens) = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize()
    else {
        return vec![sql.trim().to_string()];
    };
    let mut out = Vec::new();
    let mut current = String::new();
    for token in tokens {
        if token == Token::SemiColon {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
        } else {
            current.push_str(&token.to_string());
        }
    }
    if !is_blank(&current) {
        out.push(current.trim().to_string());
    }
    out
}

/// Whether text holds nothing but whitespace and comments.
pub fn is_blank(sql: &str) -> bool {
    let dialect = dialect();
    match Tokenizer::new(&dialect, sql).tokenize() {
        Ok(tokens) => tokens.iter().all(|t| {
            matches!(
                t,
                Token::Whitespace(
                    Whitespace::Space
                        | Whitespace::Newline
                        | Whitespace::Tab
                        | Whitespace::SingleLineComment { .. }
                        | Whitespace::MultiLineComment(_)
                )
            )
        }),
        Err(_) => sql.trim().is_empty(),
    }
}

/// Turns a sqlparser error into Trino's `SYNTAX_ERROR` with its line and column.
pub fn syntax_error(e: ParserError) -> TrinoError {
    let text = match e {
        ParserError::ParserError(s) | ParserError::TokenizerError(s) => s,
        ParserError::RecursionLimitExceeded => return too_deeply_nested(),
    };
    let (message, location) = match text.rfind(" at Line: ") {
        Some(at) => {
            let rest = &text[at + " at Line: ".len()..];
            let mut parts = rest.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            let location = match (line, column) {
                (Some(line), Some(column)) => Some(ErrorLocation { line, column }),
                _ => None,
            };
            (text[..at].to_string(), location)
        }
        None => (text, None),
    };
    let message = message.replace("sql parser error: ", "");
    TrinoError::new(ErrorCode::SYNTAX_ERROR, message)
        .at(location.or(Some(ErrorLocation { line: 1, column: 1 })))
}

/// Parser levels a statement spends before its first expression (statement, query,
/// select item, …): the parser's recursion limit leaves room for them, so that exactly
/// [`MAX_NESTING`] levels of expressions parse and the tree's check has the last word.
const PARSER_LEVELS_ABOVE_EXPRESSIONS: usize = 100;

/// How deeply a statement's text nests, from its tokens alone: brackets and parentheses
/// open at once, plus the longest run of prefix operators (`NOT NOT …`, `- - …`).
fn token_nesting(tokens: &[TokenWithSpan]) -> usize {
    let (mut open, mut run, mut deepest) = (0usize, 0usize, 0usize);
    for token in tokens {
        match &token.token {
            Token::LParen | Token::LBracket => open += 1,
            Token::RParen | Token::RBracket => open = open.saturating_sub(1),
            Token::Whitespace(_) => continue,
            Token::Minus | Token::Plus => run += 1,
            Token::Word(w) if w.value.eq_ignore_ascii_case("NOT") => run += 1,
            _ => run = 0,
        }
        deepest = deepest.max(open + run);
    }
    deepest
}

/// The error of a statement that ran the parser out of [`crate::trino_dialect::PARSE_STEPS`].
fn too_complex() -> TrinoError {
    TrinoError::new(
        ErrorCode::STACK_OVERFLOW,
        format!(
            "statement is too large (parsing it took more than {} steps: a syntax error \
             inside deeply nested expressions makes the parser retry every level)",
            crate::trino_dialect::PARSE_STEPS
        ),
    )
}

/// Trino's error for a statement nested deeper than [`MAX_NESTING`].
fn too_deeply_nested() -> TrinoError {
    TrinoError::new(
        ErrorCode::STACK_OVERFLOW,
        format!(
            "statement is too large (expressions and subqueries nest more than {MAX_NESTING} \
             levels deep)"
        ),
    )
}

/// Counts how deeply a statement's expressions and queries nest, and stops one level
/// past [`MAX_NESTING`]: the walk itself never goes deeper than that.
struct Nesting {
    depth: usize,
}

impl Nesting {
    fn enter(&mut self) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Nesting {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
}

/// Refuses a statement whose expressions or queries nest deeper than [`MAX_NESTING`].
pub fn check_nesting(statement: &Statement) -> Result<()> {
    match statement.visit(&mut Nesting { depth: 0 }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(too_deeply_nested()),
    }
}

/// Refuses a statement that cannot be prepared or executed by `EXECUTE`: another
/// `PREPARE`, `EXECUTE` or `DEALLOCATE` (one that executed itself would never end).
pub fn check_preparable(sql: &str) -> Result<()> {
    let dialect = dialect();
    let tokens = Tokenizer::new(&dialect, sql).tokenize().unwrap_or_default();
    let first = tokens
        .iter()
        .find(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon));
    if let Some(Token::Word(word)) = first {
        let keyword = word.value.to_ascii_uppercase();
        if matches!(keyword.as_str(), "PREPARE" | "EXECUTE" | "DEALLOCATE") {
            return Err(TrinoError::new(
                ErrorCode::NOT_SUPPORTED,
                format!("Invalid statement type for prepared statement: {keyword}"),
            ));
        }
    }
    Ok(())
}

/// Applies `rewrite` to every expression of a statement, innermost first; the first error
/// stops it.
pub(crate) fn rewrite_expressions(
    statement: &mut Statement,
    mut rewrite: impl FnMut(&mut Expr) -> Result<()>,
) -> Result<()> {
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |expr| {
        if let Err(e) = rewrite(expr) {
            failure = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    failure.map_or(Ok(()), Err)
}

/// Rewrites every lambda function call in a statement into its internal function.
pub fn lower_lambdas(statement: &mut Statement) -> Result<()> {
    rewrite_expressions(statement, lower_call)
}

/// Whether an expression is a `ROW(…)` constructor; answers its arguments.
pub fn row_constructor_args(expr: &Expr) -> Option<Vec<Expr>> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let [name] = function.name.0.as_slice() else {
        return None;
    };
    let name = name.as_ident()?;
    if name.quote_style.is_some() || !name.value.eq_ignore_ascii_case("row") {
        return None;
    }
    plain_args(function)
}

/// `named_struct('n1', e1, 'n2', e2, …)`: a struct whose fields have the given names.
pub fn named_struct(fields: Vec<(String, Expr)>) -> Expr {
    let args = fields
        .into_iter()
        .flat_map(|(name, value)| [Expr::Value(Value::SingleQuotedString(name).into()), value])
        .collect();
    call(Ident::new("named_struct"), args)
}

/// A call of the function `name` with plain arguments.
fn call(name: Ident, args: Vec<Expr>) -> Expr {
    Expr::Function(function(name, args, Vec::new()))
}

/// The function call `name(args …)` with `clauses` (`ORDER BY …`) after its arguments.
pub(crate) fn function(
    name: Ident,
    args: Vec<Expr>,
    clauses: Vec<FunctionArgumentClause>,
) -> Function {
    Function {
        name: ObjectName::from(vec![name]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }
}

/// Names a query's result columns as Trino does: an expression without an alias is
/// `_col<position>`, a field reference `a.b.c` is `c` (when no other column has that name).
fn name_output_columns(query: &mut Query) {
    let mut body = query.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return;
    };
    let last_part = |item: &SelectItem| match item {
        SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.value.to_ascii_lowercase()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(|p| p.value.to_ascii_lowercase())
        }
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_ascii_lowercase()),
        _ => None,
    };
    let names: Vec<Option<String>> = select.projection.iter().map(last_part).collect();
    for (position, item) in select.projection.iter_mut().enumerate() {
        let alias = match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return,
            SelectItem::ExprWithAlias { .. } | SelectItem::UnnamedExpr(Expr::Identifier(_)) => {
                continue
            }
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                let Some(last) = parts.last() else { continue };
                let name = last.value.to_ascii_lowercase();
                if names.iter().filter(|n| n.as_deref() == Some(&name)).count() > 1 {
                    continue;
                }
                last.clone()
            }
            SelectItem::UnnamedExpr(_) => Ident::new(format!("_col{position}")),
        };
        if let SelectItem::UnnamedExpr(expr) = item {
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias,
            };
        }
    }
}

/// Trino's query clauses DataFusion does not read, in forms it does:
/// - `GROUP BY AUTO` (group by every selected expression that is no aggregate) as
///   `GROUP BY ALL`, with `count(*)` spelled `count(1)`, which DataFusion's `GROUP BY ALL`
///   cannot plan;
/// - `FETCH FIRST n ROWS ONLY` as `LIMIT n`;
/// - `ORDER BY k FETCH FIRST n ROWS WITH TIES` as the rows whose `rank()` in that order is
///   at most `n`, in that order.
struct QueryClauses;

impl VisitorMut for QueryClauses {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        group_by_auto(&mut query.body);
        values_rounded(&mut query.body);
        let Some(fetch) = query.fetch.take() else {
            return ControlFlow::Continue(());
        };
        let one = || Expr::Value(Value::Number("1".into(), false).into());
        let quantity = fetch.quantity.clone().unwrap_or_else(one);
        if !fetch.with_ties {
            let offset = match query.limit_clause.take() {
                Some(LimitClause::LimitOffset { offset, .. }) => offset,
                _ => None,
            };
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(quantity),
                offset,
                limit_by: Vec::new(),
            });
            return ControlFlow::Continue(());
        }
        match ties(query, &quantity) {
            Some(rewritten) => *query = rewritten,
            // Left as written: DataFusion's planner names what it cannot do.
            None => query.fetch = Some(fetch),
        }
        ControlFlow::Continue(())
    }
}

/// `GROUP BY AUTO` in `body`'s selects as `GROUP BY ALL`.
fn group_by_auto(body: &mut SetExpr) {
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            group_by_auto(left);
            group_by_auto(right);
        }
        SetExpr::Select(select) => {
            let GroupByExpr::Expressions(exprs, modifiers) = &select.group_by else {
                return;
            };
            let auto = matches!(exprs.as_slice(), [Expr::Identifier(ident)]
                if ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("auto"));
            if !auto {
                return;
            }
            select.group_by = GroupByExpr::All(modifiers.clone());
            let _ = visit_expressions_mut(&mut select.projection, |expr| {
                if let Expr::Function(function) = expr {
                    let is_count = function.name.to_string().eq_ignore_ascii_case("count");
                    if let FunctionArguments::List(list) = &mut function.args {
                        if is_count {
                            for arg in &mut list.args {
                                if let FunctionArg::Unnamed(FunctionArgExpr::Wildcard) = arg {
                                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(
                                        Expr::Value(Value::Number("1".into(), false).into()),
                                    ));
                                }
                            }
                        }
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        _ => {}
    }
}

/// `query` (ordered, `FETCH … WITH TIES`, no `OFFSET`) as the rows ranked at most `n`.
fn ties(query: &Query, quantity: &Expr) -> Option<Query> {
    let order_by = query.order_by.as_ref()?;
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return None;
    };
    if query.limit_clause.is_some() || keys.is_empty() {
        return None;
    }
    let mut inner = query.clone();
    inner.with = None;
    inner.order_by = None;
    inner.fetch = None;
    let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let text = format!(
        "SELECT * EXCLUDE (\"$rank\") FROM (SELECT *, rank() OVER (ORDER BY {}) AS \"$rank\" \
         FROM ({inner}) AS \"$ties\") AS \"$ranked\" WHERE \"$rank\" <= {quantity} \
         ORDER BY \"$rank\"",
        keys.join(", ")
    );
    let mut statements = Parser::parse_sql(&dialect(), &text).ok()?;
    let Some(Statement::Query(mut rewritten)) = statements.pop() else {
        return None;
    };
    rewritten.with = query.with.clone();
    Some(*rewritten)
}

/// `UNNEST(a, …) WITH ORDINALITY`: the positions as one more array unnested beside the
/// others, `sequence(1, n)` for the longest array's length `n`.
struct Ordinality;

impl VisitorMut for Ordinality {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::UNNEST {
            array_exprs,
            with_ordinality,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if !*with_ordinality || array_exprs.is_empty() {
            return ControlFlow::Continue(());
        }
        let lengths: Vec<Expr> = array_exprs
            .iter()
            .map(|array| {
                let length = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(call(Ident::new("cardinality"), vec![array.clone()])),
                    data_type: DataType::BigInt(None),
                    format: None,
                    array: false,
                };
                let zero = Expr::Value(Value::Number("0".into(), false).into());
                call(Ident::new("coalesce"), vec![length, zero])
            })
            .collect();
        let longest = if lengths.len() == 1 {
            lengths
                .into_iter()
                .next()
                .unwrap_or(Expr::Value(Value::Null.into()))
        } else {
            call(Ident::new("greatest"), lengths)
        };
        let one = Expr::Value(Value::Number("1".into(), false).into());
        array_exprs.push(call(Ident::new("sequence"), vec![one, longest]));
        *with_ordinality = false;
        ControlFlow::Continue(())
    }
}

/// Trino's method syntax, `'a,b'.split(',')`: the call with the value as its first
/// argument, `split('a,b', ',')`; chains (`x.trim().upper()`) call in order.
fn method_calls(expr: &mut Expr) {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return;
    };
    let calls = access_chain
        .iter()
        .take_while(|a| matches!(a, AccessExpr::Dot(Expr::Function(_))))
        .count();
    if calls == 0 {
        return;
    }
    let mut value = (**root).clone();
    for access in access_chain.drain(..calls) {
        let AccessExpr::Dot(Expr::Function(mut method)) = access else {
            continue;
        };
        // `tokens` quoted a method named by a keyword so that it parses as a name.
        for part in &mut method.name.0 {
            if let Some(ident) = part.as_ident() {
                let mut ident = ident.clone();
                ident.quote_style = None;
                *part = ObjectNamePart::Identifier(ident);
            }
        }
        if let FunctionArguments::List(list) = &mut method.args {
            list.args
                .insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(value)));
        } else {
            method.args = FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(value))],
                clauses: Vec::new(),
            });
        }
        value = Expr::Function(method);
    }
    if access_chain.is_empty() {
        *expr = value;
    } else {
        **root = value;
    }
}

/// `JSON '…'` as `json_parse('…')`, `UUID '…'` and a CAST to a type DataFusion's planner
/// does not know (`JSON`, `UUID`, a type holding JSON, `MAP(K, V)`) as the internal
/// `"$cast"(x, 'type')`.
fn json_literal_and_casts(expr: &mut Expr) {
    fn needs_own_cast(data_type: &DataType) -> bool {
        match data_type {
            DataType::JSON | DataType::Uuid | DataType::Map(..) => true,
            DataType::Custom(name, modifiers) => {
                let name = name.to_string();
                modifiers.is_empty()
                    && ["ipaddress", "variant", "number"]
                        .iter()
                        .any(|known| name.eq_ignore_ascii_case(known))
            }
            DataType::Array(
                ArrayElemTypeDef::AngleBracket(inner)
                | ArrayElemTypeDef::Parenthesis(inner)
                | ArrayElemTypeDef::SquareBracket(inner, _),
            ) => needs_own_cast(inner),
            DataType::Struct(fields, _) => fields.iter().any(|f| needs_own_cast(&f.field_type)),
            _ => false,
        }
    }
    match expr {
        Expr::TypedString(typed) if matches!(typed.data_type, DataType::Uuid) => {
            let Some(text) = typed.value.value.clone().into_string() else {
                return;
            };
            let target = Expr::Value(Value::SingleQuotedString("uuid".into()).into());
            let value = Expr::Value(Value::SingleQuotedString(text).into());
            *expr = call(
                Ident::with_quote('"', crate::functions::json::cast::CAST),
                vec![value, target],
            );
        }
        Expr::TypedString(typed) if matches!(typed.data_type, DataType::JSON) => {
            let Some(text) = typed.value.value.clone().into_string() else {
                return;
            };
            *expr = call(
                Ident::new("json_parse"),
                vec![Expr::Value(Value::SingleQuotedString(text).into())],
            );
        }
        Expr::Cast {
            kind,
            expr: inner,
            data_type,
            format: None,
            array: false,
        } if needs_own_cast(data_type) => {
            let name = match kind {
                CastKind::TryCast | CastKind::SafeCast => crate::functions::json::cast::TRY_CAST,
                _ => crate::functions::json::cast::CAST,
            };
            let target = Expr::Value(Value::SingleQuotedString(data_type.to_string()).into());
            *expr = call(
                Ident::with_quote('"', name),
                vec![(**inner).clone(), target],
            );
        }
        _ => {}
    }
}

/// `reduce_agg(value, initial, f, g)` as `reduce(array_agg(value) FILTER (WHERE value IS
/// NOT NULL), initial, f, s -> s)`: Trino asks `f` and `g` to agree (g combines the states of
/// parts of the input), so folding every value with `f` answers the same.
fn reduce_agg(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    if !function.name.to_string().eq_ignore_ascii_case("reduce_agg") || function.over.is_some() {
        return;
    }
    let Some(args) = plain_args(function) else {
        return;
    };
    let [value, initial, input, _combine] = args.as_slice() else {
        return;
    };
    let template = "reduce(array_agg(\"$value\") FILTER (WHERE \"$value\" IS NOT NULL), \
                    \"$initial\", \"$input\", s -> s)";
    let Ok(mut rewritten) = Parser::new(&dialect())
        .try_with_sql(template)
        .and_then(|mut parser| parser.parse_expr())
    else {
        return;
    };
    let _ = visit_expressions_mut(&mut rewritten, |e| {
        if let Expr::Identifier(ident) = e {
            let replacement = match ident.value.as_str() {
                "$value" => value,
                "$initial" => initial,
                "$input" => input,
                _ => return ControlFlow::<()>::Continue(()),
            };
            *e = replacement.clone();
        }
        ControlFlow::<()>::Continue(())
    });
    *expr = rewritten;
}

/// `regexp_replace(s, p, x -> …)` as `"$regexp_splice"(s, p, transform("$regexp_groups"(s,
/// p), x -> …))`: the function of each match's capturing groups, spliced in its place.
fn regexp_replace_with_function(expr: &mut Expr) {
    let Expr::Function(function) = expr else {
        return;
    };
    if !function
        .name
        .to_string()
        .eq_ignore_ascii_case("regexp_replace")
    {
        return;
    }
    let Some(args) = plain_args(function) else {
        return;
    };
    let [subject, pattern, lambda] = args.as_slice() else {
        return;
    };
    if !matches!(lambda, Expr::Lambda(_)) {
        return;
    }
    let groups = call(
        Ident::with_quote('"', "$regexp_groups"),
        vec![subject.clone(), pattern.clone()],
    );
    let replacements = call(Ident::new("transform"), vec![groups, lambda.clone()]);
    *expr = call(
        Ident::with_quote('"', "$regexp_splice"),
        vec![subject.clone(), pattern.clone(), replacements],
    );
}

/// `x[k]` with a computed `k` (a column, a lambda's parameter) as `element_at(x, k)`:
/// DataFusion takes a map's key only as a constant. For an array both answer the same
/// element (NULL past its end).
fn computed_subscript(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::Subscript;
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return;
    };
    let is_index =
        |access: &AccessExpr| matches!(access, AccessExpr::Subscript(Subscript::Index { .. }));
    let computed = |access: &AccessExpr| {
        matches!(access, AccessExpr::Subscript(Subscript::Index { index })
            if !matches!(index, Expr::Value(_)))
    };
    if !access_chain.iter().all(is_index) || !access_chain.iter().any(computed) {
        return;
    }
    let mut value = (**root).clone();
    for access in access_chain.iter() {
        if let AccessExpr::Subscript(Subscript::Index { index }) = access {
            value = call(Ident::new("element_at"), vec![value, index.clone()]);
        }
    }
    *expr = value;
}

/// `U&'\+01F600'` as the text it spells (the parser has read its escapes), and `map()` as
/// the empty map.
fn unicode_literal_and_empty_map(expr: &mut Expr) {
    match expr {
        Expr::Value(value) => {
            if let Value::UnicodeStringLiteral(text) = &value.value {
                value.value = Value::SingleQuotedString(text.clone());
            }
        }
        Expr::Function(function) => {
            let empty = match &function.args {
                FunctionArguments::List(list) => list.args.is_empty(),
                FunctionArguments::None => false,
                FunctionArguments::Subquery(_) => false,
            };
            if empty && function.name.to_string().eq_ignore_ascii_case("map") {
                let empty_array = || {
                    Expr::Array(datafusion::sql::sqlparser::ast::Array {
                        elem: Vec::new(),
                        named: true,
                    })
                };
                *expr = call(Ident::new("map"), vec![empty_array(), empty_array()]);
            }
        }
        _ => {}
    }
}

/// `c op ANY (query)`, `c op SOME (query)` and `c op ALL (query)` of a constant `c` (no
/// column in it) as one scalar subquery over the query's rows, with SQL's answer when a
/// comparison is NULL: ANY is true if one comparison is, false if none is NULL; ALL is false
/// if one is, true if none is NULL. DataFusion plans such comparisons only in a WHERE
/// clause; over columns they stay DataFusion's.
fn constant_quantified_comparison(expr: &mut Expr) {
    let (left, compare_op, right, all) = match expr {
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => (left, compare_op, right, false),
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => (left, compare_op, right, true),
        _ => return,
    };
    let Expr::Subquery(query) = right.as_ref() else {
        return;
    };
    let mut has_column = false;
    let _ = visit_expressions(left.as_ref(), |e| {
        has_column |= matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        ControlFlow::<()>::Continue(())
    });
    if has_column {
        return;
    }
    let text = if all {
        "(SELECT CASE WHEN NOT bool_and(\"$compare\") THEN false \
         WHEN count(*) = count(\"$compare\") THEN true END FROM (SELECT 1) AS \"$rows\"(\"$value\"))"
    } else {
        "(SELECT CASE WHEN bool_or(\"$compare\") THEN true \
         WHEN count(*) = count(\"$compare\") THEN false END FROM (SELECT 1) AS \"$rows\"(\"$value\"))"
    };
    let Ok(mut rewritten) = Parser::new(&dialect())
        .try_with_sql(text)
        .and_then(|mut parser| parser.parse_expr())
    else {
        return;
    };
    let compare = Expr::BinaryOp {
        left: left.clone(),
        op: compare_op.clone(),
        right: Box::new(Expr::Identifier(Ident::with_quote('"', "$value"))),
    };
    let _ = visit_expressions_mut(&mut rewritten, |e| {
        if matches!(e, Expr::Identifier(ident) if ident.value == "$compare") {
            *e = Expr::Nested(Box::new(compare.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    if let Expr::Subquery(outer) = &mut rewritten {
        if let SetExpr::Select(select) = outer.body.as_mut() {
            if let Some(TableFactor::Derived { subquery, .. }) =
                select.from.first_mut().map(|from| &mut from.relation)
            {
                *subquery = query.clone();
            }
        }
    }
    *expr = rewritten;
}

/// `localtimestamp` and `localtime`, written without parentheses as SQL has them, as the
/// function calls.
fn bare_clock_function(expr: &mut Expr) {
    if let Expr::Identifier(ident) = expr {
        let name = ident.value.to_ascii_lowercase();
        if ident.quote_style.is_none() && (name == "localtimestamp" || name == "localtime") {
            *expr = call(Ident::new(name), vec![]);
        }
    }
}

/// `INTERVAL '3' YEAR`, `INTERVAL '5' MONTH` and `INTERVAL '2-3' YEAR TO MONTH` as Trino's
/// `interval year to month`, where DataFusion makes every interval a month-day-nanosecond
/// one, which clients are told is `interval day to second`.
fn type_year_month_interval(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::DateTimeField;
    let Expr::Interval(interval) = expr else {
        return;
    };
    let Expr::Value(value) = interval.value.as_ref() else {
        return;
    };
    let Value::SingleQuotedString(text) = &value.value else {
        return;
    };
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number = |part: &str| -> Option<i64> {
        (!part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    let months = match (&interval.leading_field, &interval.last_field) {
        (Some(DateTimeField::Year), None) => number(digits).and_then(|y| y.checked_mul(12)),
        (Some(DateTimeField::Month), None) => number(digits),
        (Some(DateTimeField::Year), Some(DateTimeField::Month)) => {
            let Some((years, months)) = digits.split_once('-') else {
                return;
            };
            match (number(years), number(months)) {
                (Some(y), Some(m)) if m < 12 => y.checked_mul(12).and_then(|y| y.checked_add(m)),
                _ => None,
            }
        }
        _ => return,
    };
    let Some(months) = months.filter(|m| *m <= i64::from(i32::MAX)) else {
        return;
    };
    let mut count = Expr::Value(Value::Number(months.to_string(), false).into());
    if negative {
        count = Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(count),
        };
    }
    let count = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(count),
        data_type: DataType::Int(None),
        format: None,
        array: false,
    };
    let unit = Expr::Value(Value::SingleQuotedString("Interval(YearMonth)".into()).into());
    *expr = call(Ident::new("arrow_cast"), vec![count, unit]);
}

/// `CAST(x AS CHAR(n))` as the text cut to `n` characters without its trailing spaces:
/// Trino pads a `char(n)` with spaces that no comparison sees (`CAST('Test' AS CHAR(20)) =
/// CAST('Test ' AS CHAR(25))`); a value kept without them compares as Trino's do.
fn cast_to_char(expr: &mut Expr) {
    let Expr::Cast {
        kind,
        expr: inner,
        data_type: DataType::Char(length) | DataType::Character(length),
        format: None,
        array: false,
    } = expr
    else {
        return;
    };
    let length = match length {
        Some(CharacterLength::IntegerLength { length, .. }) => *length,
        _ => 1,
    };
    let text = Expr::Cast {
        kind: kind.clone(),
        expr: inner.clone(),
        data_type: DataType::Varchar(None),
        format: None,
        array: false,
    };
    let number = Expr::Value(Value::Number(length.to_string(), false).into());
    let one = Expr::Value(Value::Number("1".into(), false).into());
    let cut = call(Ident::new("substr"), vec![text, one, number]);
    *expr = call(Ident::new("rtrim"), vec![cut]);
}

/// Types `TIMESTAMP '2012-10-31 01:00[:00[.123]] [zone]'` as Trino does, where DataFusion
/// reads neither a time without seconds nor a zone name and types every literal at
/// nanoseconds: the literal is the instant it names, at microseconds (nanoseconds for a
/// fraction of more than six digits), and with a zone
/// (`UTC`, `Asia/Tokyo`, `+01:00`) a `timestamp(p) with time zone` in that zone. Text this
/// does not read is left to DataFusion's own parsing and its errors.
fn type_timestamp_literal(expr: &mut Expr) {
    let Expr::TypedString(typed) = expr else {
        return;
    };
    if !matches!(
        typed.data_type,
        DataType::Timestamp(None, TimezoneInfo::None)
    ) {
        return;
    }
    let Some(text) = typed.value.value.clone().into_string() else {
        return;
    };
    let Some((value, arrow_type, digits)) = timestamp_literal(&text) else {
        return;
    };
    let number = Expr::Value(Value::Number(value.unsigned_abs().to_string(), false).into());
    let number = if value < 0 {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: Box::new(number),
        }
    } else {
        number
    };
    let arrow_type = Expr::Value(Value::SingleQuotedString(arrow_type).into());
    let value = call(Ident::new("arrow_cast"), vec![number, arrow_type]);
    *expr = with_precision(value, digits);
}

/// The rows of `VALUES` with their timestamps and times rounded to their precision but not
/// typed at it: DataFusion refuses a column of `VALUES` whose rows' fields carry different
/// metadata (`TIMESTAMP '2020-01-01 10:00'` in one row, NULL in the next).
fn values_rounded(body: &mut SetExpr) {
    match body {
        SetExpr::Values(values) => {
            for value in values.rows.iter_mut().flatten() {
                if let Expr::Function(function) = value {
                    if let [ObjectNamePart::Identifier(name)] = function.name.0.as_mut_slice() {
                        if name.value == crate::functions::precision::NAME {
                            name.value = crate::functions::precision::ROUND_NAME.to_string();
                        }
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            values_rounded(left);
            values_rounded(right);
        }
        _ => {}
    }
}

/// `value` typed at Trino's `precision` (see `functions/precision.rs`).
fn with_precision(value: Expr, precision: usize) -> Expr {
    let digits = Expr::Value(Value::Number(precision.to_string(), false).into());
    call(
        Ident::with_quote('"', crate::functions::precision::NAME),
        vec![value, digits],
    )
}

/// Trino's precision for `TIME '01:02:03.456'` (the digits written: `time(3)`) and for casts
/// to `timestamp(p)` and `time(p)` (3 when not written): the value is computed at microseconds
/// (nanoseconds for a time, or past six digits) and rounded to the precision, which its type
/// carries.
fn temporal_precision(expr: &mut Expr) {
    static TIME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^\s*\d{1,2}:\d{1,2}(?::\d{1,2}(?:\.(\d{1,12}))?)?\s*$")
            .expect("a valid pattern")
    });
    match expr {
        Expr::TypedString(typed)
            if matches!(typed.data_type, DataType::Time(None, TimezoneInfo::None)) =>
        {
            let Some(text) = typed.value.value.clone().into_string() else {
                return;
            };
            let Some(parts) = TIME.captures(&text) else {
                return;
            };
            let digits = parts.get(1).map_or(0, |m| m.as_str().len());
            *expr = with_precision(expr.clone(), digits);
        }
        Expr::Cast {
            kind,
            expr: inner,
            data_type,
            format: None,
            array: false,
        } => {
            let (precision, computed) = match data_type {
                DataType::Timestamp(p, tz)
                    if p.is_none_or(|p| p <= u64::from(crate::types::MAX_TEMPORAL_PRECISION)) =>
                {
                    let p = p.unwrap_or(3);
                    (
                        p,
                        DataType::Timestamp(Some(if p <= 6 { 6 } else { 9 }), *tz),
                    )
                }
                DataType::Time(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone)
                    if p.is_none_or(|p| p <= u64::from(crate::types::MAX_TEMPORAL_PRECISION)) =>
                {
                    (p.unwrap_or(3), DataType::Time(None, TimezoneInfo::None))
                }
                _ => return,
            };
            let cast = Expr::Cast {
                kind: kind.clone(),
                expr: inner.clone(),
                data_type: computed,
                format: None,
                array: false,
            };
            *expr = with_precision(cast, precision as usize);
        }
        _ => {}
    }
}

/// A timestamp literal's value in its unit since the epoch, its Arrow type's name and the
/// digits of its fractional seconds.
fn timestamp_literal(text: &str) -> Option<(i64, String, usize)> {
    use chrono::{NaiveDate, NaiveTime, TimeZone};
    use datafusion::arrow::array::timezone::Tz;
    static SHAPE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,12}))?)?)?\s*(\S*)\s*$",
        )
        .expect("a valid pattern")
    });
    let parts = SHAPE.captures(text)?;
    let number =
        |at: usize| -> Option<u32> { parts.get(at).map_or(Some(0), |m| m.as_str().parse().ok()) };
    let date = NaiveDate::from_ymd_opt(parts[1].parse().ok()?, number(2)?, number(3)?)?;
    let fraction = parts.get(7).map_or("", |m| m.as_str());
    let nanos: u32 = format!("{:0<9}", &fraction[..fraction.len().min(9)])
        .parse()
        .ok()?;
    let time = NaiveTime::from_hms_nano_opt(number(4)?, number(5)?, number(6)?, nanos)?;
    let local = date.and_time(time);
    // Never coarser than the microseconds tables store: DataFusion compares two timestamps
    // at the coarser unit of the two, which would cut a column's values down to the literal's.
    let (unit, per_second) = match fraction.len() {
        0..=6 => ("Microsecond", 1_000_000),
        _ => ("Nanosecond", 1_000_000_000),
    };
    let zone = &parts[8];
    let (instant, zone) = if zone.is_empty() {
        (local.and_utc(), None)
    } else {
        let name = match zone {
            "Z" | "z" | "utc" | "GMT" | "Etc/UTC" => "UTC",
            // `GMT-08:30`, `UTC+01:00`: the offset
            other => ["GMT", "UTC"]
                .iter()
                .find_map(|prefix| other.strip_prefix(prefix))
                .filter(|offset| offset.starts_with(['+', '-']))
                .unwrap_or(other),
        };
        let tz: Tz = name.parse().ok()?;
        let instant = tz.from_local_datetime(&local).earliest()?;
        (instant.with_timezone(&chrono::Utc), Some(name))
    };
    let value = instant
        .timestamp()
        .checked_mul(per_second)?
        .checked_add(i64::from(instant.timestamp_subsec_nanos()) / (1_000_000_000 / per_second))?;
    let zone = match zone {
        Some(name) => format!("Some(\"{name}\")"),
        None => "None".to_string(),
    };
    Some((value, format!("Timestamp({unit}, {zone})"), fraction.len()))
}

/// Types `1e3` as DOUBLE, as Trino does (decimal literals such as `1.5` stay DECIMAL).
fn type_double_literal(expr: &mut Expr) {
    let Expr::Value(value) = expr else {
        return;
    };
    let Value::Number(text, _) = &value.value else {
        return;
    };
    if !text.contains(['e', 'E']) {
        return;
    }
    *expr = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::Value(Value::SingleQuotedString(text.clone()).into())),
        data_type: DataType::Double(ExactNumberInfo::None),
        format: None,
        array: false,
    };
}

/// Types `DECIMAL '12.30'` as Trino does, by its digits (`decimal(4,2)`), where DataFusion
/// would use its default decimal type.
fn type_decimal_literal(expr: &mut Expr) {
    let Expr::TypedString(typed) = expr else {
        return;
    };
    if !matches!(typed.data_type, DataType::Decimal(ExactNumberInfo::None)) {
        return;
    }
    let Some(text) = typed.value.value.clone().into_string() else {
        return;
    };
    let digits = text.trim().trim_start_matches(['+', '-']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let is_number = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if !is_number(whole) || !is_number(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return;
    }
    let whole = whole.trim_start_matches('0');
    let scale = fraction.len() as u64;
    let precision = ((whole.len() as u64) + scale).max(1);
    *expr = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::Value(Value::SingleQuotedString(text).into())),
        data_type: DataType::Decimal(ExactNumberInfo::PrecisionAndScale(precision, scale as i64)),
        format: None,
        array: false,
    };
}

/// Rewrites `CAST(ROW(a, b) AS ROW(x T, y U))` to `named_struct('x', CAST(a AS T), …)`:
/// Trino pairs a row's fields with the target's by position.
fn name_row_cast(expr: &mut Expr) {
    let Expr::Cast {
        kind,
        expr: inner,
        data_type: DataType::Struct(fields, _),
        format: None,
        array: false,
    } = expr
    else {
        return;
    };
    let Some(args) = row_constructor_args(inner) else {
        return;
    };
    if args.len() != fields.len() || fields.iter().any(|f| f.field_name.is_none()) {
        return;
    }
    let named = fields
        .iter()
        .zip(args)
        .map(|(field, value)| {
            let name = field.field_name.as_ref().map(|n| n.value.clone());
            let value = Expr::Cast {
                kind: kind.clone(),
                expr: Box::new(value),
                data_type: field.field_type.clone(),
                format: None,
                array: false,
            };
            (name.unwrap_or_default(), value)
        })
        .collect();
    *expr = named_struct(named);
}

/// The plain positional arguments of a call: `None` when it has other arguments (named
/// ones, `DISTINCT`, `ORDER BY`, …).
pub(crate) fn plain_args(function: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn lower_call(expr: &mut Expr) -> Result<()> {
    let Expr::Function(function) = expr else {
        return Ok(());
    };
    let Some(name) = function.name.0.last().and_then(|p| p.as_ident()) else {
        return Ok(());
    };
    if name.quote_style.is_some() {
        return Ok(());
    }
    let Some(kind) = LambdaKind::from_trino_name(&name.value.to_ascii_lowercase()) else {
        return Ok(());
    };
    let Some(args) = plain_args(function) else {
        return Ok(());
    };
    if !args.iter().any(|a| matches!(a, Expr::Lambda(_))) {
        return Ok(());
    }
    let expected = kind.value_args() + kind.lambda_count();
    if args.len() != expected {
        return Err(TrinoError::new(
            ErrorCode::FUNCTION_NOT_FOUND,
            format!(
                "Unexpected parameters for function {}: expected {expected} arguments",
                name.value
            ),
        ));
    }
    let mut captures: Vec<(String, Expr)> = Vec::new();
    let mut new_args: Vec<Expr> = args[..kind.value_args()].to_vec();
    for lambda in &args[kind.value_args()..] {
        let Expr::Lambda(lambda) = lambda else {
            return Err(TrinoError::new(
                ErrorCode::GENERIC_USER_ERROR,
                format!("Function {} expects a lambda expression", name.value),
            ));
        };
        let params: Vec<String> = lambda
            .params
            .iter()
            .map(|p| p.value.to_ascii_lowercase())
            .collect();
        new_args.push(lambda_body(&lambda.body, &params, &mut captures));
    }
    new_args.extend(captures.into_iter().map(|(_, e)| e));
    *expr = call(Ident::with_quote('"', kind.udf_name()), new_args);
    Ok(())
}

/// The SQL text of a lambda body, as the literal an internal lambda function takes: its
/// `params` become `__p<i>` and the outer columns it reads `__c<i>`, which `captures`
/// collects (the call passes them after the bodies).
pub(crate) fn lambda_body(
    body: &Expr,
    params: &[String],
    captures: &mut Vec<(String, Expr)>,
) -> Expr {
    let mut body = body.clone();
    let _ = visit_expressions_mut(&mut body, |e| {
        replace_identifier(e, params, captures);
        ControlFlow::<()>::Continue(())
    });
    Expr::Value(Value::SingleQuotedString(body.to_string()).into())
}

/// Replaces a lambda parameter by `__p<i>` and any other column reference by `__c<i>`,
/// remembering the captured expression.
fn replace_identifier(expr: &mut Expr, params: &[String], captures: &mut Vec<(String, Expr)>) {
    let mut capture = |expr: &Expr| -> Ident {
        let key = expr.to_string().to_ascii_lowercase();
        let index = match captures.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                captures.push((key, expr.clone()));
                captures.len() - 1
            }
        };
        Ident::new(capture_name(index))
    };
    match expr {
        Expr::Identifier(ident) => {
            let name = if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_ascii_lowercase()
            };
            match params.iter().position(|p| *p == name) {
                Some(i) => *ident = Ident::new(param_name(i)),
                None => {
                    let replacement = capture(&Expr::Identifier(ident.clone()));
                    *ident = replacement;
                }
            }
        }
        Expr::CompoundIdentifier(parts) => {
            let first = parts[0].value.to_ascii_lowercase();
            match params.iter().position(|p| *p == first) {
                Some(i) => parts[0] = Ident::new(param_name(i)),
                None => {
                    let replacement = capture(&Expr::CompoundIdentifier(parts.clone()));
                    *expr = Expr::Identifier(replacement);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trino_types_become_generic_types() {
        let rewritten = |sql: &str| -> String {
            tokens(sql)
                .unwrap()
                .iter()
                .map(|t| t.token.to_string())
                .collect()
        };
        assert_eq!(
            rewritten("CAST(x AS ARRAY(ROW(a INTEGER, b ARRAY(VARCHAR))))"),
            "CAST(x AS ARRAY<STRUCT<a INTEGER, b ARRAY<VARCHAR>>>)"
        );
        assert_eq!(
            rewritten("SELECT ROW(1, 2), ARRAY[1]"),
            "SELECT ROW(1, 2), ARRAY[1]"
        );
        // A rewritten statement's errors point into the text as written.
        let err = parse_statements("SELECT CAST(x AS ROW(a INTEGER)), ) FROM t").unwrap_err();
        assert_eq!(
            err.location,
            Some(ErrorLocation {
                line: 1,
                column: 35
            }),
            "{}",
            err.message
        );
    }

    fn parsed(sql: &str) -> String {
        parse_statements(sql).unwrap()[0].to_string()
    }

    #[test]
    fn result_columns_are_named_as_trino_names_them() {
        assert_eq!(
            parsed("SELECT 1 + 1, t.a, b, count(*) AS n, s.f.g FROM t"),
            "SELECT 1 + 1 AS _col0, t.a AS a, b, count(*) AS n, s.f.g AS g FROM t"
        );
        // Two columns called `id` keep their qualified names.
        assert_eq!(
            parsed("SELECT a.id, b.id FROM a JOIN b ON a.k = b.k"),
            "SELECT a.id, b.id FROM a JOIN b ON a.k = b.k"
        );
        // Positions after a wildcard are unknown until planning: left alone.
        assert_eq!(parsed("SELECT *, 1 FROM t"), "SELECT *, 1 FROM t");
        assert_eq!(
            parsed("SELECT 1 UNION ALL SELECT 2"),
            "SELECT 1 AS _col0 UNION ALL SELECT 2"
        );
    }

    #[test]
    fn decimal_literals_are_typed_by_their_digits() {
        assert_eq!(
            parsed("SELECT DECIMAL '12.30' AS d, DECIMAL '-0.5' AS e, DECIMAL '007' AS f"),
            "SELECT CAST('12.30' AS DECIMAL(4,2)) AS d, CAST('-0.5' AS DECIMAL(1,1)) AS e, \
             CAST('007' AS DECIMAL(1,0)) AS f"
        );
    }

    #[test]
    fn parameters_are_bound_in_the_order_they_are_written() {
        let statement = |sql: &str| parse_statements(sql).unwrap().remove(0);
        let expr = |sql: &str| {
            Parser::new(&dialect())
                .try_with_sql(sql)
                .unwrap()
                .parse_expr()
                .unwrap()
        };
        let values = [expr("1"), expr("'it''s'")];
        let mut bound = statement("SELECT '?', ? + ? AS x");
        assert_eq!(count_parameters(&bound), 2);
        bind_parameters(&mut bound, &values).unwrap();
        assert_eq!(
            bound.to_string(),
            "SELECT '?' AS _col0, (1) + ('it''s') AS x"
        );
        // OFFSET is written before LIMIT: the first value is the offset.
        let mut bound = statement("SELECT 1 OFFSET ? LIMIT ?");
        bind_parameters(&mut bound, &[expr("10"), expr("20")]).unwrap();
        let printed = bound.to_string();
        assert!(
            printed.contains("LIMIT (20)") && printed.contains("OFFSET (10)"),
            "{printed}"
        );
        let err = bind_parameters(&mut statement("SELECT ?"), &[]).unwrap_err();
        assert_eq!(err.code, ErrorCode::INVALID_PARAMETER_USAGE);
    }

    #[test]
    fn quotes_inside_strings_survive_the_rewrite() {
        assert_eq!(parsed("SELECT 'it''s' AS a"), "SELECT 'it''s' AS a");
        assert_eq!(
            split_statements("SELECT 'a;''b'; SELECT 2"),
            vec!["SELECT 'a;''b'", "SELECT 2"]
        );
    }

    #[test]
    fn exponent_literals_are_doubles() {
        assert_eq!(
            parsed("SELECT 1e3 AS a, 1.5 AS b"),
            "SELECT CAST('1e3' AS DOUBLE) AS a, 1.5 AS b"
        );
    }

    #[test]
    fn row_casts_pair_fields_by_position() {
        assert_eq!(
            parsed("SELECT CAST(ROW(1, 'a') AS ROW(x INTEGER, y VARCHAR)) AS r"),
            "SELECT named_struct('x', CAST(1 AS INTEGER), 'y', CAST('a' AS VARCHAR)) AS r"
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse_statements("SELECT * FORM t").unwrap_err();
        assert_eq!(err.code, ErrorCode::SYNTAX_ERROR);
        assert!(
            err.full_message().starts_with("line 1:"),
            "{}",
            err.full_message()
        );
    }

    #[test]
    fn lambdas_capture_outer_columns() {
        let statements = parse_statements(
            "SELECT REDUCE(TRANSFORM(SEQUENCE(1, CARDINALITY(v1)), i -> v1[i] * v2[i]), 0.0, (s, x) -> s + x, s -> s) FROM t",
        )
        .unwrap();
        let text = statements[0].to_string();
        assert!(text.contains(r#""$lambda_transform"(SEQUENCE(1, CARDINALITY(v1)), 'element_at(__c0, __p0) * element_at(__c1, __p0)', v1, v2)"#), "{text}");
        assert!(text.contains(r#""$lambda_reduce"("#), "{text}");
        assert!(text.contains("'__p0 + __p1', '__p0')"), "{text}");
    }

    #[test]
    fn scripts_split_at_top_level_semicolons() {
        let parts = split_statements("SELECT ';'; -- c\nSELECT 2;\n-- trailing comment\n");
        assert_eq!(parts, vec!["SELECT ';'", "-- c\nSELECT 2"]);
    }
}
