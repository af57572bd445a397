//! placeholder until the unit branch lands
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    text.strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| "bad".into())
}
