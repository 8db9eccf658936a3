//! A small reader for IMAP's generic data forms (atoms, quoted strings,
//! literals, NIL, parenthesised lists), for the few responses imap-proto
//! does not parse (NAMESPACE). Depth and size are bounded.

/// One datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An atom (or number).
    Atom(String),
    /// A quoted string or literal.
    String(Vec<u8>),
    /// NIL.
    Nil,
    /// A parenthesised list.
    List(Vec<Token>),
}

impl Token {
    /// The token as text, for strings and atoms.
    pub fn as_string(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::String(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// The deepest list nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Reads all data in `input` (separated by spaces).
pub fn parse(input: &[u8]) -> Result<Vec<Token>, &'static str> {
    let mut reader = Reader { input, pos: 0 };
    let tokens = reader.items(0, None)?;
    Ok(tokens)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn items(&mut self, depth: usize, close: Option<u8>) -> Result<Vec<Token>, &'static str> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        let mut items = Vec::new();
        loop {
            while matches!(self.peek(), Some(b' ' | b'\r' | b'\n')) {
                self.pos += 1;
            }
            match self.peek() {
                None if close.is_none() => return Ok(items),
                None => return Err("unclosed list"),
                Some(c) if Some(c) == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b')') => return Err("unbalanced ')'"),
                Some(b'(') => {
                    self.pos += 1;
                    items.push(Token::List(self.items(depth + 1, Some(b')'))?));
                }
                Some(b'"') => items.push(Token::String(self.quoted()?)),
                Some(b'{') => items.push(Token::String(self.literal()?)),
                Some(_) => items.push(self.atom()),
            }
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, &'static str> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escaped = self.input.get(self.pos + 1).ok_or("dangling escape")?;
                    out.push(*escaped);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>, &'static str> {
        let close = self.input[self.pos..]
            .iter()
            .position(|&c| c == b'}')
            .ok_or("bad literal")?;
        let digits = std::str::from_utf8(&self.input[self.pos + 1..self.pos + close])
            .map_err(|_| "bad literal")?;
        let len: usize = digits
            .trim_end_matches('+')
            .parse()
            .map_err(|_| "bad literal")?;
        let start = self.pos + close + 3; // "}\r\n"
        let end = start.checked_add(len).ok_or("bad literal")?;
        let data = self.input.get(start..end).ok_or("short literal")?;
        self.pos = end;
        Ok(data.to_vec())
    }

    fn atom(&mut self) -> Token {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'(' | b')' | b'\r' | b'\n') {
                break;
            }
            self.pos += 1;
        }
        let text = String::from_utf8_lossy(&self.input[start..self.pos]).into_owned();
        if text.eq_ignore_ascii_case("NIL") {
            Token::Nil
        } else {
            Token::Atom(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_data() {
        let tokens = parse(b"((\"a\\\"b\" \"/\")) NIL {3}\r\nx y atom").expect("valid");
        assert_eq!(
            tokens,
            vec![
                Token::List(vec![Token::List(vec![
                    Token::String(b"a\"b".to_vec()),
                    Token::String(b"/".to_vec())
                ])]),
                Token::Nil,
                Token::String(b"x y".to_vec()),
                Token::Atom("atom".into()),
            ]
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(parse(&[b'('; 100]).is_err());
        assert!(parse(b"(a").is_err());
        assert!(parse(b"a)").is_err());
        assert!(parse(b"\"open").is_err());
        assert!(parse(b"{99}\r\nshort").is_err());
        assert!(parse(b"{99999999999999999999}\r\n").is_err());
    }
}
