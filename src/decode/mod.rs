//! Decode: raw log bytes to UTF-8 text.
//!
//! E-Post writes whatever bytes it received; on Japanese Windows that is CP932 (Shift_JIS) for
//! the most part, sometimes UTF-8 or ISO-2022-JP inside protocol dumps. Pure ASCII lines, by
//! far the most common, are borrowed without copying.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// CP932 / Windows-31J / Shift_JIS, the default on Japanese Windows.
    #[default]
    Cp932,
    Utf8,
    /// UTF-8 when the line is valid UTF-8, else CP932.
    Auto,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cp932 => "cp932",
            Encoding::Utf8 => "utf-8",
            Encoding::Auto => "auto",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown encoding `{0}` (expected cp932, utf-8 or auto)")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cp932" | "shift_jis" | "shift-jis" | "sjis" | "windows-31j" | "ms932" => {
                Ok(Encoding::Cp932)
            }
            "utf-8" | "utf8" => Ok(Encoding::Utf8),
            "auto" => Ok(Encoding::Auto),
            _ => Err(UnknownEncoding(s.to_string())),
        }
    }
}

/// Decoded text and whether bytes had to be replaced with U+FFFD.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub replaced: bool,
}

/// Decodes one line (or any byte slice). Never fails: invalid sequences become U+FFFD and
/// `replaced` says so.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Decoded<'_> {
    if bytes.is_ascii() {
        // SAFETY-free fast path: ASCII is valid UTF-8.
        return Decoded {
            text: Cow::Borrowed(std::str::from_utf8(bytes).expect("ASCII is UTF-8")),
            replaced: false,
        };
    }
    match encoding {
        Encoding::Utf8 => utf8(bytes),
        Encoding::Cp932 => cp932(bytes),
        Encoding::Auto => match std::str::from_utf8(bytes) {
            Ok(s) => Decoded {
                text: Cow::Borrowed(s),
                replaced: false,
            },
            Err(_) => cp932(bytes),
        },
    }
}

fn utf8(bytes: &[u8]) -> Decoded<'_> {
    let text = String::from_utf8_lossy(bytes);
    let replaced = matches!(text, Cow::Owned(_));
    Decoded { text, replaced }
}

fn cp932(bytes: &[u8]) -> Decoded<'_> {
    let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
    Decoded {
        text,
        replaced: had_errors,
    }
}

/// Decodes text in a named charset, as found in MIME encoded-words. Unknown labels fall back to
/// the configured log encoding.
pub fn decode_charset(bytes: &[u8], label: &str, fallback: Encoding) -> Decoded<'static> {
    match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
        Some(enc) => {
            let (text, _, had_errors) = enc.decode(bytes);
            Decoded {
                text: Cow::Owned(text.into_owned()),
                replaced: had_errors,
            }
        }
        None => {
            let d = decode(bytes, fallback);
            Decoded {
                text: Cow::Owned(d.text.into_owned()),
                replaced: d.replaced,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_borrowed() {
        let d = decode(b"hello", Encoding::Cp932);
        assert!(matches!(d.text, Cow::Borrowed("hello")));
        assert!(!d.replaced);
    }

    #[test]
    fn cp932_japanese() {
        // 窓口PC in CP932
        let d = decode(b"\x91\x8b\x8c\xfbPC", Encoding::Cp932);
        assert_eq!(d.text, "窓口PC");
        assert!(!d.replaced);
    }

    #[test]
    fn invalid_bytes_are_replaced_and_flagged() {
        let d = decode(b"ab\x81\xffcd", Encoding::Cp932);
        assert!(d.replaced);
        assert!(d.text.contains('\u{FFFD}'));
        assert!(d.text.starts_with("ab") && d.text.ends_with("cd"));
        let d = decode(b"ab\xffcd", Encoding::Utf8);
        assert!(d.replaced);
        assert_eq!(d.text, "ab\u{FFFD}cd");
    }

    #[test]
    fn auto_prefers_utf8_then_cp932() {
        let d = decode("窓口".as_bytes(), Encoding::Auto);
        assert_eq!(d.text, "窓口");
        let d = decode(b"\x91\x8b\x8c\xfb", Encoding::Auto);
        assert_eq!(d.text, "窓口");
    }

    #[test]
    fn parse_names() {
        assert_eq!("CP932".parse::<Encoding>().unwrap(), Encoding::Cp932);
        assert_eq!("utf8".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert!("latin9".parse::<Encoding>().is_err());
    }

    #[test]
    fn iso2022jp_charset() {
        let d = decode_charset(b"\x1b$B;3EDB@O:\x1b(B", "iso-2022-jp", Encoding::Cp932);
        assert_eq!(d.text, "山田太郎");
    }
}
