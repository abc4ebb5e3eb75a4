//! A minimal, zero-allocation JSON cursor for exchange messages.
//!
//! Depth messages are read in one pass straight into scaled integers: no tree, no strings, no
//! per-level allocation. It validates the structure it walks (brackets, commas, colons, string
//! and number tokens) and rejects what it cannot read; it does not decode string escapes
//! (keys and decimal strings never carry them) but skips over them correctly.

use std::fmt;

/// Where and why the bytes stopped making sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonError {
    pub pos: usize,
    pub what: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.pos)
    }
}

impl std::error::Error for JsonError {}

pub type JsonResult<T> = Result<T, JsonError>;

/// Nesting allowed in skipped values; deeper input is rejected instead of recursing.
const MAX_DEPTH: u32 = 64;

pub struct Cursor<'a> {
    b: &'a [u8],
    pub i: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, i: 0 }
    }

    /// The whole input (for specialised readers that work on bytes directly).
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }

    #[inline]
    pub fn err<T>(&self, what: &'static str) -> JsonResult<T> {
        Err(JsonError { pos: self.i, what })
    }

    #[inline(always)]
    pub fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    /// Next non-whitespace byte, not consumed.
    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    pub fn expect(&mut self, c: u8, what: &'static str) -> JsonResult<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    /// Only whitespace may follow the top-level value.
    pub fn end(&mut self) -> JsonResult<()> {
        if self.peek().is_some() {
            return self.err("trailing bytes after the message");
        }
        Ok(())
    }

    /// A string token; returns its raw contents (escapes left as they are).
    #[inline]
    pub fn string(&mut self) -> JsonResult<&'a [u8]> {
        self.expect(b'"', "expected a string")?;
        let start = self.i;
        let b = self.b;
        let mut i = self.i;
        loop {
            match b.get(i) {
                None => {
                    self.i = i;
                    return self.err("unterminated string");
                }
                Some(b'"') => break,
                Some(b'\\') => i += 2,
                Some(c) if *c < 0x20 => {
                    self.i = i;
                    return self.err("control character in string");
                }
                Some(_) => i += 1,
            }
        }
        self.i = i + 1;
        Ok(&b[start..i])
    }

    /// A number token's bytes (`-?digits(.digits)?([eE][+-]?digits)?`), unvalidated beyond shape.
    #[inline]
    pub fn number(&mut self) -> JsonResult<&'a [u8]> {
        self.ws();
        let start = self.i;
        while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
            self.i += 1;
        }
        if self.i == start {
            return self.err("expected a number");
        }
        Ok(&self.b[start..self.i])
    }

    /// A decimal given either as a string ("61659.70", exchange style) or a bare number.
    #[inline]
    pub fn decimal(&mut self) -> JsonResult<&'a [u8]> {
        if self.peek() == Some(b'"') {
            self.string()
        } else {
            self.number()
        }
    }

    /// A non-negative integer (update ids), as a number or a string of digits.
    #[inline]
    pub fn u64(&mut self) -> JsonResult<u64> {
        let tok = if self.peek() == Some(b'"') { self.string()? } else { self.number()? };
        if tok.is_empty() || tok.len() > 20 {
            return self.err("expected an unsigned integer");
        }
        let mut v: u64 = 0;
        for &c in tok {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return self.err("expected an unsigned integer");
            }
            v = match v.checked_mul(10).and_then(|v| v.checked_add(d as u64)) {
                Some(v) => v,
                None => return self.err("integer out of range"),
            };
        }
        Ok(v)
    }

    /// Skip any value (validating its structure).
    pub fn skip_value(&mut self) -> JsonResult<()> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: u32) -> JsonResult<()> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => {
                let mut obj = self.object()?;
                while obj.next_key(self)?.is_some() {
                    self.skip_depth(depth + 1)?;
                }
                Ok(())
            }
            Some(b'[') => {
                let mut arr = self.array()?;
                while arr.next(self)? {
                    self.skip_depth(depth + 1)?;
                }
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => self.err("expected a value"),
        }
    }

    fn literal(&mut self, lit: &'static [u8]) -> JsonResult<()> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            self.err("invalid literal")
        }
    }

    /// Consume `{` and return an iterator over its keys.
    #[inline]
    pub fn object(&mut self) -> JsonResult<ObjectIter> {
        self.expect(b'{', "expected an object")?;
        Ok(ObjectIter { first: true })
    }

    /// Consume `[` and return an iterator over its elements.
    #[inline]
    pub fn array(&mut self) -> JsonResult<ArrayIter> {
        self.expect(b'[', "expected an array")?;
        Ok(ArrayIter { first: true })
    }
}

/// Walks `"key": value` pairs; after each key the caller must consume the value.
pub struct ObjectIter {
    first: bool,
}

impl ObjectIter {
    #[inline]
    pub fn next_key<'a>(&mut self, c: &mut Cursor<'a>) -> JsonResult<Option<&'a [u8]>> {
        match c.peek() {
            Some(b'}') => {
                c.i += 1;
                return Ok(None);
            }
            Some(b',') if !self.first => c.i += 1,
            _ if self.first => {}
            _ => return c.err("expected ',' or '}' in object"),
        }
        self.first = false;
        let key = c.string()?;
        c.expect(b':', "expected ':' after key")?;
        Ok(Some(key))
    }
}

/// Walks array elements; `next` is true when an element follows (the caller consumes it).
pub struct ArrayIter {
    first: bool,
}

impl ArrayIter {
    #[inline]
    pub fn next(&mut self, c: &mut Cursor<'_>) -> JsonResult<bool> {
        match c.peek() {
            Some(b']') => {
                c.i += 1;
                Ok(false)
            }
            Some(b',') if !self.first => {
                c.i += 1;
                self.first = false;
                Ok(true)
            }
            Some(_) if self.first => {
                self.first = false;
                Ok(true)
            }
            _ => c.err("expected ',' or ']' in array"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_objects_and_arrays() {
        let mut c = Cursor::new(br#" {"a": [1, "x", {"q": null}], "b" : "s\"t", "c":-1.5e3, "d":true} "#);
        let mut o = c.object().unwrap();
        assert_eq!(o.next_key(&mut c).unwrap(), Some(&b"a"[..]));
        c.skip_value().unwrap();
        assert_eq!(o.next_key(&mut c).unwrap(), Some(&b"b"[..]));
        assert_eq!(c.string().unwrap(), br#"s\"t"#);
        assert_eq!(o.next_key(&mut c).unwrap(), Some(&b"c"[..]));
        assert_eq!(c.number().unwrap(), b"-1.5e3");
        assert_eq!(o.next_key(&mut c).unwrap(), Some(&b"d"[..]));
        c.skip_value().unwrap();
        assert_eq!(o.next_key(&mut c).unwrap(), None);
        c.end().unwrap();
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &br#"{"a" 1}"#[..],
            br#"{"a":1 "b":2}"#,
            br#"{"a":[1 2]}"#,
            br#"{"a":"#,
            br#"{"a":tru}"#,
            br#"{,"a":1}"#,
            br#"["#,
            b"{\"a\":\"x\x01\"}",
        ] {
            let mut c = Cursor::new(bad);
            assert!(c.skip_value().is_err(), "{:?}", std::str::from_utf8(bad));
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Cursor::new(deep.as_bytes()).skip_value().is_err());
        let mut c = Cursor::new(b"{} x");
        c.skip_value().unwrap();
        assert!(c.end().is_err());
    }

    #[test]
    fn reads_unsigned_ids() {
        assert_eq!(Cursor::new(b"123").u64(), Ok(123));
        assert_eq!(Cursor::new(b"\"42\"").u64(), Ok(42));
        assert!(Cursor::new(b"-1").u64().is_err());
        assert!(Cursor::new(b"1.5").u64().is_err());
        assert!(Cursor::new(b"99999999999999999999").u64().is_err());
    }
}
