//! Text people read in a line: a notice's lead name and reason, a reply quoted in a notice.

/// At most `max` characters of `text` on one line (control characters become spaces, runs of
/// space one), with an ellipsis when cut.
pub fn one_line(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() <= max {
        return clean;
    }
    let cut: String = clean.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}
