//! CPU and node lists in the kernel's list syntax: `0-7,16-23`.

/// A list that does not parse, with the offending part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("'{list}' is not a cpu list like 0-7,16-23 (bad part '{part}')")]
pub struct BadList {
    /// The whole list.
    pub list: String,
    /// The part that failed.
    pub part: String,
}

/// Parses `0-3,8,10-11` into sorted, de-duplicated indices.
pub fn parse_list(list: &str) -> Result<Vec<usize>, BadList> {
    let bad = |part: &str| BadList {
        list: list.to_string(),
        part: part.to_string(),
    };
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad(part))?;
        let hi: usize = hi.parse().map_err(|_| bad(part))?;
        if hi < lo {
            return Err(bad(part));
        }
        out.extend(lo..=hi);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Formats indices as a compact list: `[0,1,2,3,8]` -> `0-3,8`.
pub fn format_list(items: &[usize]) -> String {
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = parse_list("16-18, 0-2,5,1").unwrap();
        assert_eq!(v, [0, 1, 2, 5, 16, 17, 18]);
        assert_eq!(format_list(&v), "0-2,5,16-18");
        assert_eq!(format_list(&[]), "");
    }

    #[test]
    fn bad_lists_name_the_part() {
        assert_eq!(parse_list("0-3,x").unwrap_err().part, "x");
        assert_eq!(parse_list("5-2").unwrap_err().part, "5-2");
        assert!(parse_list("").is_err());
    }
}
