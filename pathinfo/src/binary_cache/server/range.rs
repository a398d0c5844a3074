//! HTTP `Range` request headers (RFC 9110 §14) for one resource of known
//! length: a single `bytes=` range becomes an inclusive byte interval.

/// What a `Range` header asks of a resource of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve the whole resource (no header, a header in another unit, several
    /// ranges, or a header that does not parse: the header is then ignored).
    Full,
    /// Serve bytes `start..=end` (both within the resource).
    Partial { start: u64, end: u64 },
    /// The range lies outside the resource: answer 416.
    Unsatisfiable,
}

/// Interprets `header` (the value of `Range`) for a resource of `length` bytes.
pub fn parse_range(header: Option<&str>, length: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if first.is_empty() {
        // A suffix: the last `n` bytes.
        let Some(n) = number(last) else {
            return RangeRequest::Full;
        };
        if n == 0 || length == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: length.saturating_sub(n),
            end: length - 1,
        };
    }
    let Some(start) = number(first) else {
        return RangeRequest::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return RangeRequest::Full,
        }
    };
    if start >= length {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(length - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(
            parse_range(Some("bytes=0-0"), 10),
            Partial { start: 0, end: 0 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-"), 10),
            Partial { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-100"), 10),
            Partial { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
        assert_eq!(parse_range(Some("bytes=+1-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=a-b"), 10), Full);
        assert_eq!(parse_range(Some("bytes=99999999999999999999-"), 10), Full);
    }

    proptest! {
        #[test]
        fn partial_ranges_lie_within_the_resource(header in "\\PC{0,40}", length in 0u64..1000) {
            if let RangeRequest::Partial { start, end } = parse_range(Some(&header), length) {
                prop_assert!(start <= end);
                prop_assert!(end < length);
            }
        }

        #[test]
        fn well_formed_ranges_are_honoured(start in 0u64..2000, len in 1u64..2000, length in 1u64..1000) {
            let end = start + len - 1;
            let got = parse_range(Some(&format!("bytes={start}-{end}")), length);
            if start >= length {
                prop_assert_eq!(got, RangeRequest::Unsatisfiable);
            } else {
                prop_assert_eq!(got, RangeRequest::Partial { start, end: end.min(length - 1) });
            }
        }
    }
}
