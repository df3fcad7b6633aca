//! PostgreSQL's `pgoutput` logical decoding messages (protocol version 1), as
//! `pgwire-replication` hands them over inside `XLogData`: relations (a table's columns,
//! sent before its first change and again after it is altered), inserts, updates,
//! deletes and truncates, with column values in text form. Begin and commit arrive as
//! their own events.

use aichemy_engine::ingestion::SourceTable;

/// One column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    /// Part of the replica identity (the key an update or delete names its row by).
    pub key: bool,
}

/// A table as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub table: SourceTable,
    pub columns: Vec<Column>,
}

/// One value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value an update did not change (not sent).
    Unchanged,
    Text(String),
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Value>,
    },
    Update {
        relation: u32,
        /// The old row's key (or whole row under `REPLICA IDENTITY FULL`), when sent.
        old: Option<Vec<Value>>,
        new: Vec<Value>,
    },
    Delete {
        relation: u32,
        old: Vec<Value>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Begin, commit, origin, type and logical messages: nothing a job stores.
    Other,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pgoutput message: {0}")]
pub struct DecodeError(String);

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| DecodeError(format!("{n} bytes past the end at {}", self.at)))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Result<String, DecodeError> {
        let rest = &self.data[self.at..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| DecodeError("unterminated string".into()))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Vec<Value>, DecodeError> {
        let n = self.i16()?;
        let mut values = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = self.i32()?;
                    let bytes = self.take(len.max(0) as usize)?;
                    Value::Text(String::from_utf8_lossy(bytes).into_owned())
                }
                other => {
                    return Err(DecodeError(format!(
                        "tuple value kind '{}' (binary output is not asked for)",
                        other as char
                    )))
                }
            });
        }
        Ok(values)
    }
}

/// Decodes one `XLogData` payload.
pub fn decode(data: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { data, at: 0 };
    let kind = r.u8()?;
    Ok(match kind {
        b'R' => {
            let id = r.u32()?;
            let schema = r.string()?;
            let table = r.string()?;
            let _identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                let flags = r.u8()?;
                let name = r.string()?;
                let type_oid = r.u32()?;
                let type_modifier = r.i32()?;
                columns.push(Column {
                    name,
                    type_oid,
                    type_modifier,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                id,
                table: SourceTable { schema, table },
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            expect(r.u8()?, b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut marker = r.u8()?;
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8()?;
            }
            expect(marker, b'N')?;
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            let marker = r.u8()?;
            if marker != b'K' && marker != b'O' {
                return Err(DecodeError(format!(
                    "delete without its old row ('{}')",
                    marker as char
                )));
            }
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let n = r.i32()?;
            let _options = r.u8()?;
            let mut relations = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                relations.push(r.u32()?);
            }
            Message::Truncate { relations }
        }
        _ => Message::Other,
    })
}

fn expect(found: u8, wanted: u8) -> Result<(), DecodeError> {
    if found == wanted {
        Ok(())
    } else {
        Err(DecodeError(format!(
            "expected '{}', found '{}'",
            wanted as char, found as char
        )))
    }
}

/// The Trino type a PostgreSQL column is stored as (what does not map exactly, such as
/// `numeric` without precision, `json`, arrays or intervals, as `varchar` text).
pub fn trino_type(type_oid: u32, type_modifier: i32) -> String {
    match type_oid {
        16 => "boolean".into(),
        17 => "varbinary".into(),
        20 => "bigint".into(),
        21 => "smallint".into(),
        23 | 26 => "integer".into(),
        700 => "real".into(),
        701 => "double".into(),
        1082 => "date".into(),
        1083 => "time(6)".into(),
        1114 => "timestamp(6)".into(),
        1184 => "timestamp(6) with time zone".into(),
        1700 if type_modifier >= 4 => {
            let precision = ((type_modifier - 4) >> 16) & 0xffff;
            let scale = (type_modifier - 4) & 0xffff;
            if (1..=38).contains(&precision) && scale <= precision {
                format!("decimal({precision},{scale})")
            } else {
                "varchar".into()
            }
        }
        _ => "varchar".into(),
    }
}

/// Whether a value of the type is a JSON number or boolean in a Debezium envelope.
pub fn json_kind(type_oid: u32) -> JsonKind {
    match type_oid {
        16 => JsonKind::Boolean,
        20 | 21 | 23 | 26 | 700 | 701 | 1700 => JsonKind::Number,
        114 | 3802 => JsonKind::Json,
        _ => JsonKind::String,
    }
}

/// How a text value is written into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Boolean,
    Number,
    /// Already JSON text (`json`, `jsonb`): embedded as is.
    Json,
    String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384u32.to_be_bytes());
        b.extend(b"public\0orders\0");
        b.push(b'd');
        b.extend(2i16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"amount\0");
        b.extend(1700u32.to_be_bytes());
        b.extend((((10 << 16) | 2) + 4i32).to_be_bytes());
        b
    }

    #[test]
    fn relations_and_changes_decode() {
        let Message::Relation(relation) = decode(&relation_bytes()).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(relation.table.to_string(), "public.orders");
        assert!(relation.columns[0].key && !relation.columns[1].key);
        let c = &relation.columns[1];
        assert_eq!(trino_type(c.type_oid, c.type_modifier), "decimal(10,2)");

        let mut update = vec![b'U'];
        update.extend(16384u32.to_be_bytes());
        update.push(b'K');
        update.extend(2i16.to_be_bytes());
        update.push(b't');
        update.extend(1i32.to_be_bytes());
        update.push(b'7');
        update.push(b'n');
        update.push(b'N');
        update.extend(2i16.to_be_bytes());
        update.push(b't');
        update.extend(1i32.to_be_bytes());
        update.push(b'7');
        update.push(b'u');
        assert_eq!(
            decode(&update).unwrap(),
            Message::Update {
                relation: 16384,
                old: Some(vec![Value::Text("7".into()), Value::Null]),
                new: vec![Value::Text("7".into()), Value::Unchanged],
            }
        );
        let mut truncate = vec![b'T'];
        truncate.extend(1i32.to_be_bytes());
        truncate.push(0);
        truncate.extend(16384u32.to_be_bytes());
        assert_eq!(
            decode(&truncate).unwrap(),
            Message::Truncate {
                relations: vec![16384]
            }
        );
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let bytes = relation_bytes();
        for end in 1..bytes.len() {
            assert!(decode(&bytes[..end]).is_err(), "{end}");
        }
    }
}
