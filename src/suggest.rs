//! "Did you mean …?" for every name a user types (ops, policies, commands, datasets).

/// Edit distance (insert, delete, substitute), case-insensitive.
pub fn distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(&a.to_lowercase(), &b.to_lowercase())
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing. A name that begins a few candidates (`Rotat` of
/// `Rotate:10/20/30`) lists them all: the user has typed the start, not a typo.
pub fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let lower = name.to_lowercase();
    let starts: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|c| lower.len() >= 3 && c.to_lowercase().starts_with(&lower) && c.len() > name.len())
        .collect();
    let quoted: Vec<String> = starts.iter().map(|c| format!("`{c}`")).collect();
    match quoted.split_last() {
        Some((only, [])) => return format!(" (did you mean {only}?)"),
        Some((last, rest)) if quoted.len() <= 5 => return format!(" (did you mean {} or {last}?)", rest.join(", ")),
        _ => {}
    }
    nearest(name, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// A closed list of names a user types (charts, export formats, `explain` stages): one enum
/// whose names drive parsing, completion, help and dispatch, so no string list is kept in step
/// with a `match` by hand.
pub trait Named: Sized + Copy + 'static {
    /// Every value, in the order help lists them.
    const ALL: &'static [Self];
    /// What a value is called in messages (`chart`, `format`).
    const WHAT: &'static str;

    fn name(self) -> &'static str;

    /// Every name, in order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.name()).collect()
    }

    /// The value named `s`, or a message with the nearest name and the list.
    fn parse_named(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown {} `{s}`{}; {}s: {}",
                    Self::WHAT,
                    hint(s, Self::names()),
                    Self::WHAT,
                    Self::names().join(", ")
                )
            })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_nonsense() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(nearest("Rotat", ["Rotate", "Invert"]), Some("Rotate"));
        assert_eq!(nearest("shearx", ["ShearX", "ShearY"]), Some("ShearX"));
        assert_eq!(nearest("zzzzzzzz", ["Rotate", "Invert"]), None);
        assert_eq!(hint("Invrt", ["Invert"]), " (did you mean `Invert`?)");
        assert_eq!(
            hint("Rotat", ["Rotate:10", "Rotate:20", "Invert"]),
            " (did you mean `Rotate:10` or `Rotate:20`?)"
        );
        assert_eq!(hint("rot", ["Rotate:10", "Invert"]), " (did you mean `Rotate:10`?)");
    }
}
