//! RPM checks (createrepo's repomd format): every `data` file of repomd.xml
//! has its size and checksum (as the catalog computed its status), and the
//! primary (plain, gz, xz, bz2 or zst) is streamed with a pull XML parser:
//! every `package`'s `location@href` exists under the repository base with
//! `size@package`, and with a deep check its `checksum`. A `location` with
//! `xml:base`, or an `href` leaving the base, is `outside_tree` and never read.
//!
//! Bounded memory: the pull parser holds one text node or tag at a time, so
//! a primary with more than [`MAX_XML_RUN`] bytes between two markup
//! delimiters (`<`, `>`) is `unreadable` instead of being held whole (a few
//! MB of xz can expand to gigabytes without a `<`).

use std::io::{self, BufRead, BufReader, Read};

use quick_xml::events::{BytesStart, Event};

use super::Context;
use super::files::{Algo, BATCH, Expected, open_index};
use super::model::{Problem, ProblemKind, RepoReport};
use crate::catalog::RpmRepository;

/// Verifies one createrepo repository.
pub(super) fn verify(ctx: &Context, repo: &RpmRepository) -> RepoReport {
    let mut report = RepoReport::new(&repo.id, "rpm", &repo.prefix);
    for item in &repo.metadata {
        let path = item
            .path
            .clone()
            .or_else(|| item.location.clone())
            .unwrap_or_else(|| repo.repomd_path.clone());
        match item.status {
            "missing" => report.add(Problem::new(
                path,
                ProblemKind::IndexMissing,
                item.location.clone(),
                None,
            )),
            "checksum_mismatch" => report.add(Problem::new(
                path,
                ProblemKind::ChecksumMismatch,
                item.checksum.as_ref().map(|c| {
                    let kind = item.checksum_type.clone().flatten().unwrap_or_default();
                    format!("{kind}:{c}")
                }),
                None,
            )),
            _ => {
                report.files_checked += 1;
                if let (Some(want), Some(got)) = (item.size, item.metadata_size)
                    && u64::try_from(want).ok() != Some(got)
                {
                    report.add(Problem::new(
                        path,
                        ProblemKind::SizeMismatch,
                        Some(want.to_string()),
                        Some(got.to_string()),
                    ));
                }
            }
        }
    }
    let primary_ok = repo
        .metadata
        .iter()
        .any(|m| m.kind == "primary" && m.status == "ok");
    match (&repo.primary_path, primary_ok) {
        (Some(primary), true) => stream_primary(ctx, repo, primary, &mut report),
        (None, _) => report.add(Problem::new(
            repo.repomd_path.clone(),
            ProblemKind::IndexMissing,
            Some("a primary data item".into()),
            None,
        )),
        _ => {}
    }
    report
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.as_ref() == name).then(|| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_else(|_| a.value.clone().into_owned())
        })
    })
}

fn stream_primary(ctx: &Context, repo: &RpmRepository, primary: &str, report: &mut RepoReport) {
    let unreadable = |report: &mut RepoReport, why: String| {
        report.add(Problem::unreadable(primary.to_owned(), why));
    };
    let reader = match open_index(&ctx.root, &ctx.confine, primary) {
        Ok(r) => r,
        Err(crate::catalog::confine::OpenError::Outside) => {
            report.add(Problem::new(primary, ProblemKind::OutsideTree, None, None));
            return;
        }
        Err(crate::catalog::confine::OpenError::Io(e)) => {
            unreadable(report, e.to_string());
            return;
        }
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(BoundedRuns {
        inner: reader,
        run: 0,
    }));
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut package_depth: Option<usize> = None;
    let mut current = Expected::default();
    let mut checksum_type: Option<String> = None;
    let mut in_checksum = false;
    let mut outside = false;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let event = match xml.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => {
                unreadable(report, format!("XML error: {e}"));
                break;
            }
        };
        match event {
            Event::Eof => break,
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name();
                let name = name.as_ref();
                match (name, package_depth) {
                    ("package", None) => {
                        package_depth = Some(depth);
                        current = Expected::default();
                        outside = false;
                    }
                    ("location", Some(d)) if depth == d + 1 => {
                        current.href = attr(e, "href").unwrap_or_default();
                        if attr(e, "xml:base").is_some() {
                            outside = true;
                        }
                    }
                    ("size", Some(d)) if depth == d + 1 => {
                        current.size = attr(e, "package").and_then(|s| s.trim().parse().ok());
                    }
                    ("checksum", Some(d)) if depth == d + 1 && !empty => {
                        checksum_type = attr(e, "type");
                        in_checksum = true;
                    }
                    _ => {}
                }
                if !empty {
                    depth += 1;
                }
                if empty && name == "package" {
                    package_depth = None;
                }
            }
            Event::Text(ref t) if in_checksum => {
                let text = t.as_ref().trim().to_owned();
                if let Some(algo) = checksum_type.as_deref().and_then(Algo::from_name)
                    && !text.is_empty()
                {
                    current.checksum = Some((algo, text));
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                in_checksum = false;
                if e.local_name().as_ref() == "package" && package_depth == Some(depth) {
                    package_depth = None;
                    report.packages += 1;
                    let done = std::mem::take(&mut current);
                    if outside {
                        report.files_checked += 1;
                        report.add(Problem::new(
                            done.href,
                            ProblemKind::OutsideTree,
                            Some(format!(
                                "inside {} (xml:base is not followed)",
                                repo.base_path
                            )),
                            None,
                        ));
                    } else if done.href.is_empty() {
                        report.add(Problem::new(
                            primary,
                            ProblemKind::Unreadable,
                            Some("location href".into()),
                            None,
                        ));
                    } else {
                        batch.push(done);
                        if batch.len() >= BATCH {
                            ctx.check(&repo.base_path, &mut batch, report);
                        }
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    ctx.check(&repo.base_path, &mut batch, report);
}

/// The most bytes a primary may hold between two markup delimiters (`<` or
/// `>`): the longest text node or tag the parser buffers (16 MiB).
pub const MAX_XML_RUN: usize = 16 << 20;

/// A reader that fails (`InvalidData`) once more than [`MAX_XML_RUN`] bytes
/// pass without a `<` or `>`.
struct BoundedRuns<R> {
    inner: R,
    run: usize,
}

impl<R: BufRead> Read for BoundedRuns<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        // Runs that start and end in this chunk are shorter than it; only
        // the one continuing from the last chunk and the one left open can
        // be long.
        let (lead, tail) = match (
            memchr::memchr2(b'<', b'>', chunk),
            memchr::memrchr2(b'<', b'>', chunk),
        ) {
            (Some(first), Some(last)) => (self.run + first, n - last - 1),
            _ => (self.run + n, self.run + n),
        };
        if lead.max(tail) > MAX_XML_RUN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_XML_RUN} bytes without markup"),
            ));
        }
        self.run = tail;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` through [`BoundedRuns`] in the 8 KiB pieces `io::copy` asks for.
    fn read_all(data: Vec<u8>) -> io::Result<u64> {
        let mut runs = BoundedRuns {
            inner: io::Cursor::new(data),
            run: 0,
        };
        io::copy(&mut runs, &mut io::sink())
    }

    fn tagged(run: usize) -> Vec<u8> {
        [&b"<a>"[..], &vec![b'x'; run], b"</a><b>x</b>"].concat()
    }

    #[test]
    fn runs_up_to_the_cap_pass_and_longer_ones_fail() {
        assert!(read_all(tagged(MAX_XML_RUN)).is_ok());
        let err = read_all(tagged(MAX_XML_RUN + 1)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(read_all(vec![b'x'; MAX_XML_RUN + 1]).is_err());
        assert!(read_all(vec![b'x'; MAX_XML_RUN]).is_ok());
    }
}
