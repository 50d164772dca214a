//! A child's output: one thread per child reads both pipes (`poll(2)`),
//! splits them into lines, and hands each line to the command's
//! [`LineHandler`], the tail kept for errors, and (without a handler) the
//! collected stdout.
//!
//! Bounded memory: a line longer than [`MAX_LINE`] bytes is handed on in
//! pieces of at most that size (each piece counts as a line), so a program
//! that writes megabytes without a newline cannot grow a buffer without
//! end. Collected stdout (commands without a line handler, whose output the
//! caller parses) is kept whole; those are the programs whose output is
//! small by construction (`zfs list`, `zfs get`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{LineHandler, Stream, TAIL_LINES};

/// The longest line handed on whole, in bytes (64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// What the reader thread fills and the waiting side reads at the end.
#[derive(Default)]
pub(super) struct Collected {
    /// The last [`TAIL_LINES`] lines of both streams.
    pub(super) tail: VecDeque<String>,
    /// The whole stdout, when it is collected.
    pub(super) stdout: Vec<u8>,
}

impl Collected {
    /// The tail, newline-separated.
    pub(super) fn tail_text(&self) -> String {
        self.tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// One open pipe and its unfinished line.
struct Pipe {
    file: File,
    stream: Stream,
    pending: Vec<u8>,
}

/// Where the lines go.
struct Sink {
    handler: Option<LineHandler>,
    collect_stdout: bool,
    shared: Arc<Mutex<Collected>>,
}

impl Sink {
    fn raw(&self, stream: Stream, bytes: &[u8]) {
        if self.collect_stdout
            && stream == Stream::Stdout
            && let Ok(mut c) = self.shared.lock()
        {
            c.stdout.extend_from_slice(bytes);
        }
    }

    fn line(&self, stream: Stream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let line = text.trim_end_matches(['\n', '\r']);
        if let Ok(mut c) = self.shared.lock() {
            if c.tail.len() == TAIL_LINES {
                c.tail.pop_front();
            }
            c.tail.push_back(line.to_owned());
        }
        match &self.handler {
            Some(h) => h(stream, line),
            None if stream == Stream::Stderr => {
                tracing::debug!(target: "mirrorer::process", line = %line, "command_stderr");
            }
            None => {}
        }
    }

    /// Hands on every complete line of `pipe.pending` (and pieces of
    /// [`MAX_LINE`] bytes of an overlong one); at end of file, the rest too.
    fn drain(&self, pipe: &mut Pipe, eof: bool) {
        let mut start = 0;
        loop {
            let rest = &pipe.pending[start..];
            let end = match memchr::memchr(b'\n', rest) {
                Some(i) if i <= MAX_LINE => i + 1,
                _ if rest.len() >= MAX_LINE => MAX_LINE,
                _ if eof && !rest.is_empty() => rest.len(),
                _ => break,
            };
            self.line(pipe.stream, &rest[..end]);
            start += end;
        }
        pipe.pending.drain(..start);
    }
}

/// Starts the thread that reads `stdout` and `stderr` until both reach end
/// of file (every process holding their write ends is gone).
pub(super) fn spawn_reader(
    stdout: Option<File>,
    stderr: Option<File>,
    handler: Option<LineHandler>,
    shared: Arc<Mutex<Collected>>,
) -> JoinHandle<()> {
    let collect_stdout = handler.is_none();
    let mut pipes: Vec<Pipe> = [(stdout, Stream::Stdout), (stderr, Stream::Stderr)]
        .into_iter()
        .filter_map(|(file, stream)| {
            file.map(|file| Pipe {
                file,
                stream,
                pending: Vec::new(),
            })
        })
        .collect();
    let sink = Sink {
        handler,
        collect_stdout,
        shared,
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while !pipes.is_empty() {
            let mut fds: Vec<libc::pollfd> = pipes
                .iter()
                .map(|p| libc::pollfd {
                    fd: p.file.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            let mut closed = Vec::new();
            for (i, fd) in fds.iter().enumerate() {
                if fd.revents == 0 {
                    continue;
                }
                let pipe = &mut pipes[i];
                // Readable, hung up or in error: one read says which (data,
                // end of file, or an error that ends this pipe).
                match pipe.file.read(&mut buf) {
                    Ok(0) => closed.push(i),
                    Ok(got) => {
                        sink.raw(pipe.stream, &buf[..got]);
                        pipe.pending.extend_from_slice(&buf[..got]);
                        sink.drain(pipe, false);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => closed.push(i),
                }
            }
            for i in closed.into_iter().rev() {
                let mut pipe = pipes.remove(i);
                sink.drain(&mut pipe, true);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipe() -> (File, File) {
        let (r, w) = std::io::pipe().unwrap();
        (
            File::from(std::os::fd::OwnedFd::from(r)),
            File::from(std::os::fd::OwnedFd::from(w)),
        )
    }

    #[test]
    fn both_streams_are_split_into_lines_and_overlong_lines_into_pieces() {
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        let handler: LineHandler = Arc::new(move |s, l: &str| {
            seen.lock().unwrap().push((s, l.len(), l.chars().next()));
        });
        let shared = Arc::new(Mutex::new(Collected::default()));
        let reader = spawn_reader(Some(out_r), Some(err_r), Some(handler), Arc::clone(&shared));
        out_w.write_all(b"one\r\n").unwrap();
        err_w.write_all(b"err").unwrap();
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        out_w.write_all(&exact).unwrap();
        out_w.write_all(&vec![b'x'; MAX_LINE * 2 + 5]).unwrap();
        drop(out_w);
        drop(err_w);
        reader.join().unwrap();
        let mut got = lines.lock().unwrap().clone();
        got.sort_by_key(|(s, _, _)| *s == Stream::Stderr);
        assert_eq!(
            got,
            [
                (Stream::Stdout, 3, Some('o')),
                (Stream::Stdout, MAX_LINE, Some('y')),
                (Stream::Stdout, MAX_LINE, Some('x')),
                (Stream::Stdout, MAX_LINE, Some('x')),
                (Stream::Stdout, 5, Some('x')),
                (Stream::Stderr, 3, Some('e')),
            ]
        );
        let c = shared.lock().unwrap();
        assert_eq!(c.tail.len(), 6);
        assert!(
            c.stdout.is_empty(),
            "a handler was set: stdout is not collected"
        );
    }

    #[test]
    fn without_a_handler_stdout_is_collected_whole() {
        let (out_r, mut out_w) = pipe();
        let shared = Arc::new(Mutex::new(Collected::default()));
        let reader = spawn_reader(Some(out_r), None, None, Arc::clone(&shared));
        let text = format!("a\n{}\nb", "é".repeat(MAX_LINE));
        out_w.write_all(text.as_bytes()).unwrap();
        drop(out_w);
        reader.join().unwrap();
        let c = shared.lock().unwrap();
        assert_eq!(c.stdout, text.as_bytes());
        assert_eq!(c.tail.front().map(String::as_str), Some("a"));
        assert_eq!(c.tail.back().map(String::as_str), Some("b"));
    }
}
