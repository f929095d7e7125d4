//! Content negotiation for `/metrics` and `/probe`: which wire format and
//! whether to gzip, with the quality values of `Accept` and
//! `Accept-Encoding` honoured (RFC 9110, section 12).
//!
//! The members of both headers are parsed by the `mediatype` crate rather
//! than by hand: `Accept` members are media ranges, and an
//! `Accept-Encoding` member (`codings [ weight ]`) has exactly the syntax of a
//! media subtype with parameters, so it is parsed as one under a placeholder
//! type. What is ours is only the choice between the two formats we have.

use mediatype::{MediaType, MediaTypeList, ReadParams};

use crate::render::exposition::Format;

/// A quality value in thousandths (`q=0.5` is 500); `q` absent is 1000.
type Quality = u16;

/// The format to answer in. OpenMetrics only when the client names it
/// (`application/openmetrics-text`, version 1.0.0 or no version) with a
/// quality above zero and at least that of the Prometheus text format; a
/// wildcard alone (`*/*`, what curl sends) keeps the text format, which
/// every scraper reads. When nothing we have is acceptable the text format
/// is still served, as Prometheus' client libraries do, rather than a 406
/// that would only turn into a failed scrape.
pub fn format<'a>(accept: impl IntoIterator<Item = &'a str>) -> Format {
    let ranges = accept_ranges(accept);
    let openmetrics = best_match(&ranges, "application", "openmetrics-text", "1.0.0");
    let text = best_match(&ranges, "text", "plain", "0.0.4");
    match openmetrics {
        Some(m) if m.explicit && m.quality > 0 && m.quality >= text.map_or(0, |t| t.quality) => {
            Format::OpenMetrics
        }
        _ => Format::Prometheus,
    }
}

/// Whether to gzip: when `gzip` (or its alias `x-gzip`, else `*`) has a
/// quality above zero that an explicit `identity` does not beat. No header,
/// or one that does not mention gzip, means no compression.
pub fn gzip<'a>(accept_encoding: impl IntoIterator<Item = &'a str>) -> bool {
    let mut gzip: Option<Quality> = None;
    let mut star: Option<Quality> = None;
    let mut identity: Option<Quality> = None;
    for value in accept_encoding {
        for member in value.split(',') {
            let member = member.trim();
            if member.is_empty() {
                continue;
            }
            // `codings [ weight ]` parsed as the subtype of a placeholder
            // type; a member that does not parse is ignored.
            let text = format!("coding/{member}");
            let Ok(parsed) = MediaType::parse(&text) else {
                continue;
            };
            let Some(q) = quality(&parsed) else {
                continue;
            };
            let coding = parsed.subty.as_str().to_ascii_lowercase();
            let slot = match coding.as_str() {
                "gzip" | "x-gzip" => &mut gzip,
                "*" => &mut star,
                "identity" => &mut identity,
                _ => continue,
            };
            // A coding listed twice counts with its first weight.
            slot.get_or_insert(q);
        }
    }
    let q = gzip.or(star).unwrap_or(0);
    q > 0 && q >= identity.unwrap_or(0)
}

/// One media range of `Accept`, reduced to what the choice needs.
struct Range {
    ty: String,
    subty: String,
    version: Option<String>,
    quality: Quality,
}

fn accept_ranges<'a>(accept: impl IntoIterator<Item = &'a str>) -> Vec<Range> {
    let mut out = Vec::new();
    for value in accept {
        // Members that do not parse are skipped, the others still count.
        for parsed in MediaTypeList::new(value).flatten() {
            let Some(quality) = quality(&parsed) else {
                continue;
            };
            let version = parsed
                .params
                .iter()
                .find(|(name, _)| name.as_str().eq_ignore_ascii_case("version"))
                .map(|(_, v)| v.unquoted_str().into_owned());
            out.push(Range {
                ty: parsed.ty.as_str().to_ascii_lowercase(),
                subty: parsed.subty.as_str().to_ascii_lowercase(),
                version,
                quality,
            });
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Match {
    quality: Quality,
    /// Matched by a range naming the type and subtype, not a wildcard.
    explicit: bool,
}

/// The quality of the most specific range matching `ty/subty` in `version`
/// (RFC 9110, 12.5.1): a range with a `version` parameter applies only to
/// that version; other parameters (`charset`, `escaping`) do not decide.
fn best_match(ranges: &[Range], ty: &str, subty: &str, version: &str) -> Option<Match> {
    let mut best: Option<(u8, Match)> = None;
    for r in ranges {
        let specificity = if r.ty == ty && r.subty == subty {
            match &r.version {
                Some(v) if v == version => 3,
                Some(_) => continue,
                None => 2,
            }
        } else if r.ty == ty && r.subty == "*" {
            1
        } else if r.ty == "*" && r.subty == "*" {
            0
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            let m = Match {
                quality: r.quality,
                explicit: specificity >= 2,
            };
            best = Some((specificity, m));
        }
    }
    best.map(|(_, m)| m)
}

/// The `q` parameter as thousandths, `None` when it is not a valid qvalue
/// (RFC 9110, 12.4.2: `0`, `0.x` to three digits, `1`, `1.000`).
fn quality(media: &MediaType<'_>) -> Option<Quality> {
    let Some(q) = media.get_param(mediatype::names::Q) else {
        return Some(1000);
    };
    let q = q.unquoted_str();
    let (int, frac) = q.split_once('.').unwrap_or((&q, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value: Quality = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(accept: &str) -> Format {
        format([accept])
    }

    #[test]
    fn prometheus_scrape_headers_get_openmetrics() {
        // Prometheus 2.x.
        assert_eq!(
            fmt("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        // Prometheus 3.x, default scrape_protocols.
        assert_eq!(
            fmt("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            Format::OpenMetrics
        );
        // Protobuf first, as with native histograms on.
        assert_eq!(
            fmt("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.6,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            Format::OpenMetrics
        );
        assert_eq!(fmt("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(
            fmt("Application/OpenMetrics-Text; Version=1.0.0; Q=0.9"),
            Format::OpenMetrics
        );
    }

    #[test]
    fn q_zero_and_lower_preferences_are_honoured() {
        assert_eq!(fmt("application/openmetrics-text;q=0"), Format::Prometheus);
        assert_eq!(
            fmt("application/openmetrics-text;q=0.0, text/plain"),
            Format::Prometheus
        );
        assert_eq!(
            fmt("text/plain;q=1, application/openmetrics-text;q=0.5"),
            Format::Prometheus
        );
        // Prometheus configured for the text format only.
        assert_eq!(
            fmt("text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
            Format::Prometheus
        );
        // A version we do not produce is not a request for ours.
        assert_eq!(
            fmt("application/openmetrics-text;version=0.0.1,*/*;q=0.1"),
            Format::Prometheus
        );
    }

    #[test]
    fn wildcards_absent_and_garbage_keep_the_text_format() {
        assert_eq!(format([]), Format::Prometheus);
        assert_eq!(fmt("*/*"), Format::Prometheus);
        assert_eq!(fmt("application/*"), Format::Prometheus);
        assert_eq!(fmt(""), Format::Prometheus);
        assert_eq!(fmt(";;;,,,/"), Format::Prometheus);
        assert_eq!(fmt("application/openmetrics-text;q=2"), Format::Prometheus);
        assert_eq!(
            fmt("application/openmetrics-text;q=abc"),
            Format::Prometheus
        );
        // A bad member does not spoil the good ones.
        assert_eq!(
            fmt("%%%, application/openmetrics-text"),
            Format::OpenMetrics
        );
        // Several header lines count together.
        assert_eq!(
            format(["text/plain;q=0.1", "application/openmetrics-text"]),
            Format::OpenMetrics
        );
    }

    #[test]
    fn gzip_negotiation() {
        assert!(gzip(["gzip"]));
        assert!(gzip(["deflate, gzip;q=1.0, *;q=0.5"]));
        assert!(gzip(["gzip, deflate, br"]));
        assert!(gzip(["x-gzip"]));
        assert!(gzip(["*"]));
        assert!(gzip(["GZIP; Q=0.5"]));
        assert!(gzip(["br", "gzip;q=0.1"]));
        assert!(!gzip([]));
        assert!(!gzip(["identity"]));
        assert!(!gzip(["gzip;q=0"]));
        assert!(!gzip(["gzip;q=0.000"]));
        assert!(!gzip(["gzip ; q=0"]));
        assert!(!gzip(["*;q=0"]));
        assert!(!gzip(["gzip;q=0, *"]));
        assert!(!gzip(["gzip;q=0.5, identity"]));
        assert!(!gzip(["gzip;q=abc"]));
        assert!(!gzip(["deflate, br"]));
    }
}
