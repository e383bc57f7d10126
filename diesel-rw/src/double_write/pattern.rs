//! [`Pattern`]: the four phases of an online migration, and [`Side`]: the two databases.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One of the two databases of a double write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The database being moved away from.
    Source,
    /// The database being moved to.
    Destination,
}

impl Side {
    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Source => Side::Destination,
            Side::Destination => Side::Source,
        }
    }

    /// `0` for the source, `1` for the destination: an index into per-side arrays.
    pub(crate) const fn index(self) -> usize {
        match self {
            Side::Source => 0,
            Side::Destination => 1,
        }
    }

    /// The name used in messages and specs: `source` or `destination`.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The phase of a migration: which side serves reads and which sides take writes, in which order.
///
/// | pattern     | reads from  | writes to, in order     |
/// |-------------|-------------|-------------------------|
/// | `SrcOnly`   | source      | source                  |
/// | `SrcFirst`  | source      | source, then destination |
/// | `DstFirst`  | destination | destination, then source |
/// | `DstOnly`   | destination | destination             |
///
/// A migration walks `SrcOnly -> SrcFirst -> DstFirst -> DstOnly` one step at a time, and can
/// walk back the same way (see [`PatternSwitch`](super::PatternSwitch)). The names of
/// [`Display`](fmt::Display) are `src_only`, `src_first`, `dst_first` and `dst_only`;
/// [`FromStr`] also takes them in any ASCII case, with the words joined by `-`, a space or
/// nothing (`SrcFirst`, `SRC-FIRST`, `src first`: see [`Pattern::from_str`]).
///
/// ```
/// use diesel_rw::double_write::{Pattern, Side};
///
/// let p: Pattern = "src_first".parse().unwrap();
/// assert_eq!(p, Pattern::SrcFirst);
/// assert_eq!(p.first(), Side::Source);
/// assert_eq!(p.second(), Some(Side::Destination));
/// assert_eq!(p.to_string(), "src_first");
/// for spelling in ["SrcFirst", "SRC_FIRST", "src-first", "srcfirst", " Src First "] {
///     assert_eq!(spelling.parse::<Pattern>().unwrap(), Pattern::SrcFirst);
/// }
/// assert!("source_first".parse::<Pattern>().is_err());
/// assert!("src__first".parse::<Pattern>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// Reads and writes on the source only: the starting point.
    SrcOnly,
    /// Reads from the source; writes to the source, then to the destination.
    SrcFirst,
    /// Reads from the destination; writes to the destination, then to the source.
    DstFirst,
    /// Reads and writes on the destination only: the migration is done.
    DstOnly,
}

impl Pattern {
    /// Every pattern, in migration order.
    pub const ALL: [Pattern; 4] = [
        Pattern::SrcOnly,
        Pattern::SrcFirst,
        Pattern::DstFirst,
        Pattern::DstOnly,
    ];

    /// The pattern's name: `src_only`, `src_first`, `dst_first` or `dst_only`.
    pub const fn name(self) -> &'static str {
        match self {
            Pattern::SrcOnly => "src_only",
            Pattern::SrcFirst => "src_first",
            Pattern::DstFirst => "dst_first",
            Pattern::DstOnly => "dst_only",
        }
    }

    /// The side that serves reads, and takes writes first.
    pub const fn first(self) -> Side {
        match self {
            Pattern::SrcOnly | Pattern::SrcFirst => Side::Source,
            Pattern::DstFirst | Pattern::DstOnly => Side::Destination,
        }
    }

    /// The side that takes writes second (after the first side applied them), if any.
    pub const fn second(self) -> Option<Side> {
        match self {
            Pattern::SrcOnly | Pattern::DstOnly => None,
            Pattern::SrcFirst => Some(Side::Destination),
            Pattern::DstFirst => Some(Side::Source),
        }
    }

    /// The side that serves reads (the first side).
    pub const fn reads_from(self) -> Side {
        self.first()
    }

    /// Whether writes go to `side`.
    pub fn writes_to(self, side: Side) -> bool {
        self.first() == side || self.second() == Some(side)
    }

    /// Whether writes go to both sides.
    pub const fn is_double(self) -> bool {
        self.second().is_some()
    }

    /// The next phase of the migration, if any.
    pub const fn next(self) -> Option<Pattern> {
        match self {
            Pattern::SrcOnly => Some(Pattern::SrcFirst),
            Pattern::SrcFirst => Some(Pattern::DstFirst),
            Pattern::DstFirst => Some(Pattern::DstOnly),
            Pattern::DstOnly => None,
        }
    }

    /// The previous phase of the migration, if any.
    pub const fn previous(self) -> Option<Pattern> {
        match self {
            Pattern::SrcOnly => None,
            Pattern::SrcFirst => Some(Pattern::SrcOnly),
            Pattern::DstFirst => Some(Pattern::SrcFirst),
            Pattern::DstOnly => Some(Pattern::DstFirst),
        }
    }

    /// Whether going from `self` to `to` is allowed without forcing: the same pattern, or one
    /// step either way.
    pub fn can_switch_to(self, to: Pattern) -> bool {
        self == to || self.next() == Some(to) || self.previous() == Some(to)
    }

    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            Pattern::SrcOnly => 0,
            Pattern::SrcFirst => 1,
            Pattern::DstFirst => 2,
            Pattern::DstOnly => 3,
        }
    }

    pub(crate) const fn from_u8(value: u8) -> Pattern {
        match value {
            0 => Pattern::SrcOnly,
            1 => Pattern::SrcFirst,
            2 => Pattern::DstFirst,
            _ => Pattern::DstOnly,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pattern {
    type Err = Error;

    /// Parses a pattern's name as a person or an admin endpoint would send it: the two words of
    /// the name (`src` or `dst`, then `only` or `first`) in any ASCII case, joined by one `_`,
    /// `-` or space, or by nothing, with surrounding whitespace ignored. So `src_first` (the
    /// [`Display`](fmt::Display) form), `SrcFirst` (the `Debug` form), `SRC_FIRST`, `src-first`,
    /// `srcfirst` and `Src First` are all [`Pattern::SrcFirst`].
    ///
    /// Anything else is [`Error::UnknownPattern`], which lists the accepted names: another word
    /// (`source_first`), a missing word (`src`), two separators (`src__first`, `src _first`),
    /// a separator at either end (`_src_first`), or a separator other than those three (a tab,
    /// a dot).
    fn from_str(s: &str) -> Result<Self, Error> {
        let name = s.trim();
        parse_name(name).ok_or_else(|| Error::UnknownPattern {
            name: name.to_owned(),
        })
    }
}

/// The pattern `name` spells (already trimmed), if any: see [`Pattern::from_str`].
fn parse_name(name: &str) -> Option<Pattern> {
    let word = |s: &str, w: &str| s.eq_ignore_ascii_case(w);
    // `get` is `None` when the third byte is inside a character: not a name either.
    let (side, rest) = (name.get(..3)?, name.get(3..)?);
    let rest = rest.strip_prefix(['_', '-', ' ']).unwrap_or(rest);
    let src = match side {
        s if word(s, "src") => true,
        s if word(s, "dst") => false,
        _ => return None,
    };
    let only = match rest {
        r if word(r, "only") => true,
        r if word(r, "first") => false,
        _ => return None,
    };
    Some(match (src, only) {
        (true, true) => Pattern::SrcOnly,
        (true, false) => Pattern::SrcFirst,
        (false, false) => Pattern::DstFirst,
        (false, true) => Pattern::DstOnly,
    })
}

/// The message of [`Error::InvalidTransition`].
pub(crate) fn transition_message(from: Pattern, to: Pattern) -> String {
    const ORDER: &str = "src_only <-> src_first <-> dst_first <-> dst_only";
    if from == to {
        let end = if from == Pattern::SrcOnly {
            "first"
        } else {
            "last"
        };
        return format!(
            "cannot switch the double-write pattern past `{from}`, the {end} phase ({ORDER}); nothing was switched"
        );
    }
    format!(
        "cannot switch the double-write pattern from `{from}` to `{to}`: patterns change one step at a time along {ORDER}; switch through each phase in turn, or use PatternSwitch::force if skipping is intended"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Pattern::ALL {
            assert_eq!(p.name().parse::<Pattern>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
            assert_eq!(format!("{p:?}").parse::<Pattern>().unwrap(), p);
            assert_eq!(Pattern::from_u8(p.to_u8()), p);
        }
        assert_eq!(" SRC_FIRST ".parse::<Pattern>().unwrap(), Pattern::SrcFirst);
    }

    #[test]
    fn every_spelling_of_every_pattern() {
        let spellings = |words: [&str; 2]| {
            let [a, b] = words;
            let (a_up, b_up) = (a.to_ascii_uppercase(), b.to_ascii_uppercase());
            let title = |w: &str| w[..1].to_ascii_uppercase() + &w[1..];
            let (a_t, b_t) = (title(a), title(b));
            vec![
                format!("{a}_{b}"),
                format!("{a_t}{b_t}"),
                format!("{a_up}_{b_up}"),
                format!("{a}-{b}"),
                format!("{a}{b}"),
                format!("{a_t} {b_t}"),
                format!("{a} {b}"),
                format!("{a_up}-{b_up}"),
                format!("{a_up}{b_up}"),
                format!("{a_t}_{b_t}"),
                format!("{a_t}-{b_t}"),
                format!("{a}{b_t}"),
                format!("\t {a}_{b}\n"),
                format!("  {a_t}{b_t}  "),
            ]
        };
        for (pattern, words) in [
            (Pattern::SrcOnly, ["src", "only"]),
            (Pattern::SrcFirst, ["src", "first"]),
            (Pattern::DstFirst, ["dst", "first"]),
            (Pattern::DstOnly, ["dst", "only"]),
        ] {
            for spelling in spellings(words) {
                assert_eq!(
                    spelling.parse::<Pattern>().ok(),
                    Some(pattern),
                    "{spelling:?}"
                );
            }
        }
        assert_eq!("sRc_FiRsT".parse::<Pattern>().unwrap(), Pattern::SrcFirst);
    }

    #[test]
    fn unknown_names_are_rejected_with_the_valid_ones() {
        for bad in [
            "",
            "   ",
            "src",
            "dst",
            "first",
            "only",
            "dst_last",
            "src_last",
            "src__first",
            "src_-first",
            "src _first",
            "src  first",
            "_src_first",
            "src_first_",
            "src_first-",
            "src\tfirst",
            "src.first",
            "src/first",
            "source_first",
            "src_firsts",
            "srcc_first",
            "src_fir",
            "src_first dst_only",
            "both",
            "sr\u{e9}_first",
            "\u{e9}\u{e9}",
            "src_\u{130}nly",
        ] {
            let err = bad.parse::<Pattern>().unwrap_err();
            assert!(
                matches!(&err, Error::UnknownPattern { name } if name == bad.trim()),
                "{bad:?}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains("src_only, src_first, dst_first, dst_only"),
                "{message}"
            );
            assert!(message.contains(&format!("`{}`", bad.trim())), "{message}");
        }
    }

    #[test]
    fn the_unknown_name_message_says_which_spellings_are_accepted() {
        let message = "sideways".parse::<Pattern>().unwrap_err().to_string();
        assert_eq!(
            message,
            "unknown double-write pattern `sideways`: expected one of src_only, src_first, \
             dst_first, dst_only (ASCII case ignored; the two words joined by one `_`, `-` or \
             space, or by nothing: src_first, SrcFirst, SRC-FIRST and `src first` all name \
             src_first)"
        );
    }

    #[test]
    fn sides_of_each_pattern() {
        assert_eq!(Pattern::SrcOnly.second(), None);
        assert_eq!(Pattern::DstOnly.first(), Side::Destination);
        assert_eq!(Pattern::DstFirst.second(), Some(Side::Source));
        assert!(Pattern::SrcFirst.writes_to(Side::Destination));
        assert!(!Pattern::SrcOnly.writes_to(Side::Destination));
        assert!(!Pattern::DstOnly.writes_to(Side::Source));
    }

    #[test]
    fn transition_messages() {
        let skip = Error::InvalidTransition {
            from: Pattern::SrcOnly,
            to: Pattern::DstFirst,
        };
        assert!(
            skip.to_string().contains("from `src_only` to `dst_first`"),
            "{skip}"
        );
        let past = Error::InvalidTransition {
            from: Pattern::DstOnly,
            to: Pattern::DstOnly,
        };
        assert!(
            past.to_string().contains("past `dst_only`, the last phase"),
            "{past}"
        );
    }

    #[test]
    fn one_step_at_a_time() {
        assert!(Pattern::SrcOnly.can_switch_to(Pattern::SrcFirst));
        assert!(Pattern::SrcFirst.can_switch_to(Pattern::SrcOnly));
        assert!(Pattern::DstFirst.can_switch_to(Pattern::DstFirst));
        assert!(!Pattern::SrcOnly.can_switch_to(Pattern::DstFirst));
        assert!(!Pattern::SrcFirst.can_switch_to(Pattern::DstOnly));
        assert!(!Pattern::DstOnly.can_switch_to(Pattern::SrcOnly));
    }
}
