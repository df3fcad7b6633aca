//! Trino's inline SQL routines, `WITH FUNCTION name(p type, …) RETURNS type RETURN expr, …
//! query`: each routine is taken off the statement's tokens, and each call of it in the
//! query becomes its body, with the arguments cast to the parameters' types in the
//! parameters' places and the whole cast to the return type. A routine may call the ones
//! defined before it (Trino refuses recursion). The routine characteristics (`LANGUAGE SQL`,
//! `[NOT] DETERMINISTIC`, `SECURITY …`, `COMMENT '…'`, `CALLED ON NULL INPUT`) change
//! nothing here; `RETURNS NULL ON NULL INPUT` makes a call NULL when an argument is. Bodies
//! of statements (`BEGIN … END`) are not supported.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, CaseWhen, CastKind, DataType, Expr, FunctionArguments, Statement, Value,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::dialect::{closing_parens, dialect, plain_args, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};

/// The most text the routines' bodies may put into one statement (or one body): a body
/// calling the routine before it twice, that one the one before it twice, … doubles with
/// each routine.
const MAX_EXPANDED_TEXT: usize = 1 << 20;

/// One `FUNCTION …` of a `WITH` clause.
#[derive(Debug, Clone)]
pub(crate) struct Routine {
    name: String,
    parameters: Vec<(String, DataType)>,
    returns: DataType,
    body: Expr,
    /// The length of the body's text.
    size: usize,
    null_on_null_input: bool,
}

fn word(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn name_of(token: &TokenWithSpan) -> Option<String> {
    match &token.token {
        Token::Word(w) => Some(if w.quote_style.is_some() {
            w.value.clone()
        } else {
            w.value.to_ascii_lowercase()
        }),
        _ => None,
    }
}

fn unsupported(message: &str) -> TrinoError {
    TrinoError::not_supported(message)
}

fn expected(what: &str, found: Option<&TokenWithSpan>) -> TrinoError {
    let found = found.map_or("end of statement".to_string(), |t| t.token.to_string());
    TrinoError::new(
        ErrorCode::SYNTAX_ERROR,
        format!("mismatched input '{found}'. Expecting: {what}"),
    )
}

/// The routines a statement starting `WITH FUNCTION` defines, and the tokens of the statement
/// without them; the tokens unchanged and no routines for any other statement.
pub(crate) fn take_routines(
    tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<Routine>)> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let at = |n: usize| significant.get(n).map(|&i| &tokens[i]);
    if at(0).and_then(word).as_deref() != Some("WITH")
        || at(1).and_then(word).as_deref() != Some("FUNCTION")
    {
        return Ok((tokens, Vec::new()));
    }
    let closing = closing_parens(&tokens);
    let mut routines: Vec<Routine> = Vec::new();
    let mut n = 1;
    let query_start = loop {
        // FUNCTION name ( parameters ) RETURNS type characteristics RETURN body
        n += 1;
        let name = at(n)
            .and_then(name_of)
            .ok_or_else(|| expected("<identifier>", at(n)))?;
        n += 1;
        let open = significant
            .get(n)
            .copied()
            .filter(|&i| tokens[i].token == Token::LParen);
        let open = open.ok_or_else(|| expected("'('", at(n)))?;
        let close = closing[open].ok_or_else(|| expected("')'", None))?;
        let parameters = parameters(&tokens[open + 1..close])?;
        n = significant.partition_point(|&i| i <= close);
        if at(n).and_then(word).as_deref() != Some("RETURNS") {
            return Err(expected("'RETURNS'", at(n)));
        }
        // The type runs to the first characteristic or RETURN.
        let type_start = n + 1;
        let mut null_on_null_input = false;
        let mut type_end = None;
        n += 1;
        loop {
            let Some(token) = at(n) else {
                return Err(expected("'RETURN'", None));
            };
            let keyword = word(token);
            let characteristic = matches!(
                keyword.as_deref(),
                Some(
                    "RETURN"
                        | "LANGUAGE"
                        | "DETERMINISTIC"
                        | "NOT"
                        | "SECURITY"
                        | "COMMENT"
                        | "CALLED"
                        | "RETURNS"
                        | "BEGIN"
                )
            ) && n > type_start;
            if characteristic && type_end.is_none() {
                type_end = Some(n);
            }
            match keyword.as_deref() {
                Some("RETURN") if type_end.is_some() => break,
                Some("BEGIN") if type_end.is_some() => {
                    return Err(unsupported(
                        "SQL routine bodies other than RETURN are not supported",
                    ))
                }
                Some("RETURNS") if type_end.is_some() => {
                    // RETURNS NULL ON NULL INPUT
                    null_on_null_input = true;
                    n += 4;
                }
                _ => n += 1,
            }
        }
        let type_tokens = &tokens[significant[type_start]..significant[type_end.unwrap_or(n)]];
        let returns = data_type(type_tokens)?;
        // The body runs to a comma before the next FUNCTION, or to the query.
        let body_start = n + 1;
        let mut depth = 0_usize;
        let mut m = body_start;
        let end = loop {
            let Some(&i) = significant.get(m) else {
                return Err(expected("a query after the functions", None));
            };
            match &tokens[i].token {
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Comma
                    if depth == 0 && at(m + 1).and_then(word).as_deref() == Some("FUNCTION") =>
                {
                    break (m, true);
                }
                _ if depth == 0
                    && m > body_start
                    && matches!(
                        word(&tokens[i]).as_deref(),
                        Some("SELECT" | "WITH" | "VALUES" | "TABLE")
                    ) =>
                {
                    break (m, false);
                }
                _ => {}
            }
            m += 1;
        };
        let (body_end, more) = end;
        let body = expression(&tokens[significant[body_start]..significant[body_end]])?;
        if routines.iter().any(|r| r.name == name) {
            return Err(TrinoError::new(
                ErrorCode::SYNTAX_ERROR,
                format!("Duplicate function: {name}"),
            ));
        }
        // The routines before it are called by their bodies.
        let body = expand(body, &routines)?;
        let size = body.to_string().len();
        routines.push(Routine {
            name,
            parameters,
            returns,
            body,
            size,
            null_on_null_input,
        });
        if !more {
            break significant[body_end];
        }
        n = body_end + 1;
    };
    Ok((tokens[query_start..].to_vec(), routines))
}

fn data_type(tokens: &[TokenWithSpan]) -> Result<DataType> {
    let dialect = dialect();
    Parser::new(&dialect)
        .with_tokens_with_locations(tokens.to_vec())
        .parse_data_type()
        .map_err(syntax_error)
}

fn expression(tokens: &[TokenWithSpan]) -> Result<Expr> {
    let dialect = dialect();
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens.to_vec());
    let expr = parser.parse_expr().map_err(syntax_error)?;
    match parser.peek_token().token {
        Token::EOF => Ok(expr),
        other => Err(TrinoError::new(
            ErrorCode::SYNTAX_ERROR,
            format!("mismatched input '{other}' in a function body"),
        )),
    }
}

/// `name type, …` of a parameter list.
fn parameters(tokens: &[TokenWithSpan]) -> Result<Vec<(String, DataType)>> {
    let closing = closing_parens(tokens);
    let mut parameters = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i <= tokens.len() {
        let at_end = i == tokens.len();
        if !at_end && tokens[i].token == Token::LParen {
            i = closing[i].map_or(tokens.len(), |c| c + 1);
            continue;
        }
        if at_end || tokens[i].token == Token::Comma {
            let part: Vec<&TokenWithSpan> = tokens[start..i]
                .iter()
                .filter(|t| !matches!(t.token, Token::Whitespace(_)))
                .collect();
            if let Some((first, _)) = part.split_first() {
                let name = name_of(first).ok_or_else(|| expected("<identifier>", Some(first)))?;
                let position = tokens[start..i]
                    .iter()
                    .position(|t| std::ptr::eq(t, *first))
                    .map_or(start, |p| start + p + 1);
                parameters.push((name, data_type(&tokens[position..i])?));
            }
            start = i + 1;
        }
        i += 1;
    }
    Ok(parameters)
}

/// `expr` with every call of `routines` replaced by its body.
fn expand(mut expr: Expr, routines: &[Routine]) -> Result<Expr> {
    let mut error = None;
    let mut expanded = 0;
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Err(e) = inline_call(e, routines, &mut expanded) {
            error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match error {
        Some(e) => Err(e),
        None => Ok(expr),
    }
}

/// Replaces every call of `routines` in `statement` by its body.
pub(crate) fn inline(statement: &mut Statement, routines: &[Routine]) -> Result<()> {
    if routines.is_empty() {
        return Ok(());
    }
    let mut error = None;
    let mut expanded = 0;
    let _ = visit_expressions_mut(statement, |e| {
        if let Err(e) = inline_call(e, routines, &mut expanded) {
            error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    error.map_or(Ok(()), Err)
}

fn cast(expr: Expr, data_type: &DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(Expr::Nested(Box::new(expr))),
        data_type: data_type.clone(),
        format: None,
        array: false,
    }
}

/// Replaces `expr` by a routine's body if it calls one; `expanded` counts the text of the
/// bodies put in so far.
fn inline_call(expr: &mut Expr, routines: &[Routine], expanded: &mut usize) -> Result<()> {
    let Expr::Function(function) = expr else {
        return Ok(());
    };
    let [part] = function.name.0.as_slice() else {
        return Ok(());
    };
    let Some(ident) = part.as_ident() else {
        return Ok(());
    };
    let name = if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    };
    let Some(routine) = routines.iter().find(|r| r.name == name) else {
        return Ok(());
    };
    let args = match (&function.args, plain_args(function)) {
        (FunctionArguments::None, _) => Vec::new(),
        (_, Some(args)) => args,
        _ => return Err(unsupported("A SQL routine takes plain arguments")),
    };
    if args.len() != routine.parameters.len() {
        let expected: Vec<String> = routine
            .parameters
            .iter()
            .map(|(_, t)| t.to_string().to_ascii_lowercase())
            .collect();
        return Err(TrinoError::new(
            ErrorCode::FUNCTION_NOT_FOUND,
            format!(
                "Unexpected parameters for function {name}: {} given. Expected: {name}({})",
                args.len(),
                expected.join(", ")
            ),
        ));
    }
    *expanded += routine.size;
    if *expanded > MAX_EXPANDED_TEXT {
        return Err(TrinoError::new(
            ErrorCode::NOT_SUPPORTED,
            "The calls of SQL routines expand past 1 MiB of text",
        ));
    }
    let mut body = routine.body.clone();
    let values: Vec<Expr> = args
        .iter()
        .zip(&routine.parameters)
        .map(|(arg, (_, data_type))| cast(arg.clone(), data_type))
        .collect();
    let _ = visit_expressions_mut(&mut body, |e| {
        if let Expr::Identifier(ident) = e {
            let written = if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_ascii_lowercase()
            };
            if let Some(at) = routine.parameters.iter().position(|(p, _)| *p == written) {
                *e = values[at].clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut result = cast(body, &routine.returns);
    if routine.null_on_null_input && !args.is_empty() {
        let conditions = args
            .iter()
            .map(|arg| CaseWhen {
                condition: Expr::IsNull(Box::new(arg.clone())),
                result: Expr::Value(Value::Null.into()),
            })
            .collect();
        result = Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions,
            else_result: Some(Box::new(result)),
        };
    }
    *expr = result;
    Ok(())
}
