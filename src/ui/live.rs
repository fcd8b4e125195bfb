//! The live display: a header and one line per running proc at the bottom of the
//! terminal, redrawn at most 10 times a second, with finished procs printed above it.
//!
//! The area is erased and redrawn in place (cursor up, clear to the end of the screen)
//! inside a synchronized update, so terminals that support it never show a half-drawn
//! frame. Its lines are cut to the terminal's width, so each takes exactly one row and the
//! cursor arithmetic stays right; the size is read at every frame, so a resize is picked
//! up by the next one. Raw mode is never enabled: Ctrl-C must stay a signal.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::cursor::{Hide, MoveDown, MoveToColumn, MoveUp, Show};
use crossterm::queue;
use crossterm::terminal::{BeginSynchronizedUpdate, Clear, ClearType, EndSynchronizedUpdate};

use super::plain::{format_finished, slowest_line, summary_line};
use super::render::{Running, Snapshot, columns, fit_lines, render};
use super::{Reporter, Summary};
use crate::event::{ProcSummary, QueueView, State};

/// How often the area is redrawn (for the spinner and the elapsed times).
const FRAME: Duration = Duration::from_millis(100);

/// Looks up how long a proc usually takes: `Some(None)` when it has no history, `None` when
/// that cannot be told yet (the task DB is not open yet), to be asked again later.
pub(super) type Estimator = Box<dyn Fn(&str) -> Option<Option<Duration>> + Send + Sync>;

/// Reads the run's queue: how many procs are scheduled, which wait to start.
pub(super) type QueueReader = Box<dyn Fn() -> Option<QueueView> + Send + Sync>;

/// The queue is read every this many frames (it walks every proc, under the scheduler's
/// lock).
const QUEUE_EVERY: usize = 5;

/// At most this many procs' expected durations are looked up in the task DB per reading
/// of the queue, so that a run of 10,000 procs does not stall the display.
const LOOKUPS_PER_READ: usize = 256;

struct Proc {
    name: String,
    started: Instant,
    expected: Option<Duration>,
    progress: Option<String>,
    /// Waiting to retry (an attempt failed): until a reading of the queue no longer
    /// finds it there.
    retrying: bool,
}

struct Screen {
    started: Instant,
    running: Vec<Proc>,
    done: usize,
    failed: usize,
    /// Procs scheduled so far, from the last reading of the queue.
    total: usize,
    /// The expected durations of the procs waiting to start.
    queued: Vec<Option<Duration>>,
    parallel: usize,
    frame: usize,
    /// The columns of each line of the live area on screen now.
    drawn: Vec<usize>,
    finished: bool,
    /// An interactive proc has the terminal: lines are printed, the area is not drawn.
    paused: bool,
    /// Stopped by Ctrl-Z, and not continued yet: likewise.
    stopped: bool,
    /// In the background of its shell (started with `&`, or `bg` after Ctrl-Z): likewise.
    background: bool,
    /// In a watch cycle: `total` counts the cycle's procs, not every scheduled one.
    cycle: bool,
}

/// Writes what goes above the live area, given the width its rows must fit in.
type Above<'a> = &'a mut dyn FnMut(&mut dyn Write, usize) -> io::Result<()>;

struct Inner {
    screen: Mutex<Screen>,
    color: bool,
    verbose: bool,
    full_log: AtomicBool,
    estimator: Mutex<Option<Estimator>>,
    /// Expected durations looked up so far, by proc name.
    expected: Mutex<HashMap<Arc<str>, Option<Duration>>>,
    queue: Mutex<Option<QueueReader>>,
    stop: AtomicBool,
    /// Cleared by `set_options(#{ dynamic: false })`: no live area, lines only.
    dynamic: AtomicBool,
}

/// The live display.
pub(crate) struct LiveReporter {
    inner: Arc<Inner>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl LiveReporter {
    /// Starts the display; `color` is off under `NO_COLOR`.
    pub(crate) fn new(color: bool, verbose: bool, full_log: bool) -> LiveReporter {
        let inner = Arc::new(Inner::new(color, verbose, full_log));
        let tick = inner.clone();
        let ticker = std::thread::Builder::new()
            .name("prun-display".into())
            .spawn(move || {
                let mut frames = 0usize;
                while !tick.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(FRAME);
                    if frames.is_multiple_of(QUEUE_EVERY) {
                        tick.read_queue();
                        tick.ask_again_for_running();
                    }
                    frames += 1;
                    tick.follow_foreground();
                    tick.redraw(None);
                }
            })
            .ok();
        LiveReporter {
            inner,
            ticker: Mutex::new(ticker),
        }
    }

    /// Sets how expected durations are looked up (the task DB's history).
    pub(crate) fn set_estimator(&self, e: Estimator) {
        *self.inner.estimator.lock().expect("estimator") = Some(e);
    }

    /// Sets how the queue is read, for the header's total and time left.
    pub(crate) fn set_queue_reader(&self, q: QueueReader) {
        *self.inner.queue.lock().expect("queue") = Some(q);
    }

    /// Ctrl-Z (SIGTSTP) stops prun as it stops any program, but first erases the live
    /// area and shows the cursor, so that the shell's prompt comes back clean (the
    /// area's hidden cursor stayed hidden at the prompt). prun stops itself with SIGSTOP,
    /// since its SIGTSTP is caught. Continued (SIGCONT), it draws the area again if it is
    /// in the foreground (see [`Inner::follow_foreground`]). The caller leaves a SIGTSTP
    /// ignored when prun started ignored, as the abort signals are.
    pub(crate) fn stop_cleanly_on_ctrl_z(&self, rt: &tokio::runtime::Runtime) {
        use tokio::signal::unix::{SignalKind, signal};
        let tstp = SignalKind::from_raw(nix::sys::signal::Signal::SIGTSTP as i32);
        let _guard = rt.enter();
        let (Ok(mut tstp), Ok(mut cont)) = (
            signal(tstp),
            signal(SignalKind::from_raw(
                nix::sys::signal::Signal::SIGCONT as i32,
            )),
        ) else {
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        rt.spawn(async move {
            while tstp.recv().await.is_some() {
                // A SIGCONT that came while prun ran (`kill -CONT`) is not the one that
                // continues this stop, which takes effect only after `kill` returns.
                while let Ok(Some(())) = tokio::time::timeout(Duration::ZERO, cont.recv()).await {}
                let Some(live) = inner.upgrade() else { return };
                live.suspend();
                drop(live);
                cont.recv().await;
                let Some(live) = inner.upgrade() else { return };
                live.screen.lock().expect("screen").stopped = false;
                live.follow_foreground();
                live.redraw(None);
            }
        });
    }

    fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.lock().expect("ticker").take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn new(color: bool, verbose: bool, full_log: bool) -> Inner {
        Inner {
            screen: Mutex::new(Screen {
                started: Instant::now(),
                running: Vec::new(),
                done: 0,
                failed: 0,
                total: 0,
                queued: Vec::new(),
                parallel: 1,
                frame: 0,
                drawn: Vec::new(),
                finished: false,
                paused: false,
                stopped: false,
                background: !in_foreground(),
                cycle: false,
            }),
            color,
            verbose,
            full_log: AtomicBool::new(full_log),
            estimator: Mutex::new(None),
            expected: Mutex::new(HashMap::new()),
            queue: Mutex::new(None),
            stop: AtomicBool::new(false),
            dynamic: AtomicBool::new(true),
        }
    }

    /// The expected duration of a proc, looked up once per name (`None` as well when
    /// `lookup` is false and it was not looked up yet).
    fn expected(&self, name: &Arc<str>, lookup: bool) -> Option<Duration> {
        if let Some(e) = self.expected.lock().expect("expected").get(name) {
            return *e;
        }
        if !lookup {
            return None;
        }
        let e = self
            .estimator
            .lock()
            .expect("estimator")
            .as_ref()
            .and_then(|f| f(name));
        // An answer not known yet is not kept: the next reading asks again.
        if let Some(e) = e {
            self.expected
                .lock()
                .expect("expected")
                .insert(name.clone(), e);
        }
        e.flatten()
    }

    /// A proc that succeeded with no history is expected to take as long the next time
    /// it runs (a later watch cycle); one with a history keeps it (a median of its runs).
    fn learn(&self, f: &ProcSummary) {
        let (State::Succeeded, Some(took)) = (f.state, f.duration) else {
            return;
        };
        let mut expected = self.expected.lock().expect("expected");
        let known = expected.entry(f.name.clone()).or_insert(None);
        if known.is_none() {
            *known = Some(took);
        }
    }

    /// Looks up again the expected durations of running procs whose look-up at their
    /// start could not tell yet (the procs that start first do so while the task DB
    /// opens), never under the screen's lock: a look-up may read the DB. A name looked
    /// up already is not asked again (see [`Inner::expected`]).
    fn ask_again_for_running(&self) {
        let unknown: Vec<Arc<str>> = {
            let sc = self.screen.lock().expect("screen");
            sc.running
                .iter()
                .filter(|p| p.expected.is_none())
                .map(|p| Arc::from(p.name.as_str()))
                .collect()
        };
        for name in unknown {
            if let Some(e) = self.expected(&name, true) {
                let mut sc = self.screen.lock().expect("screen");
                if let Some(p) = sc.running.iter_mut().find(|p| *p.name == *name) {
                    p.expected = Some(e);
                }
            }
        }
    }

    /// Reads the queue (never under the screen's lock: the reader takes the scheduler's)
    /// and the expected durations of the procs in it.
    fn read_queue(&self) {
        let view = match self.queue.lock().expect("queue").as_ref() {
            Some(read) => read(),
            None => return,
        };
        let Some(view) = view else { return };
        let mut lookups = 0;
        let queued = view
            .wanted
            .iter()
            .map(|n| {
                let known = self.expected.lock().expect("expected").contains_key(n);
                let lookup = !known && lookups < LOOKUPS_PER_READ;
                lookups += usize::from(lookup);
                self.expected(n, lookup)
            })
            .collect();
        let mut sc = self.screen.lock().expect("screen");
        if sc.running.iter().any(|p| p.retrying) {
            let queued: HashSet<&str> = view.wanted.iter().map(|n| &**n).collect();
            for p in sc.running.iter_mut().filter(|p| p.retrying) {
                p.retrying = queued.contains(p.name.as_str());
            }
        }
        if !sc.cycle {
            sc.total = view.scheduled;
        }
        sc.queued = queued;
        sc.parallel = view.parallel;
    }

    /// Erases the live area, prints `above` (if any) where it was, and draws the area
    /// again below — all in one synchronized update.
    fn redraw(&self, above: Option<&str>) {
        match above {
            // Cut to the width like the area: a wrapped line above it would move it.
            Some(text) => self.draw(Some(&mut |out, width| {
                writeln!(out, "{}", fit_lines(text, width))
            })),
            None => self.draw(None),
        }
    }

    /// [`Inner::redraw`], with what goes above the area written by `above`, given the
    /// width its rows must fit in.
    fn draw(&self, above: Option<Above<'_>>) {
        let mut sc = self.screen.lock().expect("screen");
        let (w, h) = screen_size();
        // One column short of the width: a line that fills a row leaves the cursor in
        // the terminal's pending-wrap state, and rewrapping terminals then count it
        // differently after a resize.
        let width = usize::from(w.saturating_sub(1));
        if sc.finished || sc.paused || sc.stopped || sc.background {
            if let Some(write) = above {
                let mut out = io::stdout().lock();
                let _ = write(&mut out, width);
                let _ = out.flush();
            }
            return;
        }
        if above.is_none() && sc.running.is_empty() && sc.drawn.is_empty() {
            return;
        }
        sc.frame += 1;
        let now = Instant::now();
        let snap = Snapshot {
            elapsed: now - sc.started,
            running: sc
                .running
                .iter()
                .map(|p| Running {
                    name: p.name.clone(),
                    elapsed: now - p.started,
                    expected: p.expected,
                    progress: p.progress.clone(),
                    retrying: p.retrying,
                })
                .collect(),
            done: sc.done,
            failed: sc.failed,
            total: sc.total,
            queued: sc.queued.clone(),
            parallel: sc.parallel,
            frame: sc.frame,
        };
        let lines = if sc.running.is_empty() || !self.dynamic.load(Ordering::Relaxed) {
            Vec::new()
        } else {
            render(&snap, w.saturating_sub(1), h)
        };
        let mut out = io::stdout().lock();
        let _ = queue!(out, BeginSynchronizedUpdate);
        erase(&mut out, &sc.drawn, (w, h));
        if let Some(write) = above {
            let _ = write(&mut out, width);
        }
        if !lines.is_empty() {
            let _ = queue!(out, Hide);
        }
        for l in &lines {
            let _ = write!(out, "{l}\r\n");
        }
        sc.drawn = lines.iter().map(|l| columns(l)).collect();
        let _ = queue!(out, EndSynchronizedUpdate);
        let _ = out.flush();
    }

    /// Erases the area, shows the cursor and stops prun (SIGSTOP); the area is not drawn
    /// until prun is continued.
    fn suspend(&self) {
        let mut sc = self.screen.lock().expect("screen");
        sc.stopped = true;
        clear_area(&mut sc);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGSTOP);
    }

    /// Follows whether prun is in its terminal's foreground: in the background (started
    /// with `&`, or `bg` after Ctrl-Z) the area is erased and lines only are printed;
    /// back in the foreground (`fg`, which sends a running job no signal) the next frame
    /// draws it. Nothing is written when no area is drawn: while an interactive proc has
    /// the terminal, prun is not in its foreground either, and must leave it alone.
    fn follow_foreground(&self) {
        let background = !in_foreground();
        let mut sc = self.screen.lock().expect("screen");
        if background && !sc.background && !sc.drawn.is_empty() {
            clear_area(&mut sc);
        }
        sc.background = background;
    }

    fn paint(&self, state: State, text: String) -> String {
        if !self.color {
            return text;
        }
        let code = match state {
            State::Succeeded => "32",
            State::Failed | State::FailedDep => "31",
            State::Skipped => "33",
            State::UpToDate => "36",
            _ => return text,
        };
        let word = state.as_str();
        match text.strip_prefix(word) {
            Some(rest) => format!("\x1b[{code}m{word}\x1b[0m{rest}"),
            None => text,
        }
    }
}

/// Moves up over the live area and clears it. After the window got narrower, terminals
/// that rewrap (tmux, VTE, kitty, iTerm2) show each old line on more rows: those rows are
/// counted at the current width.
///
/// The rows are cleared one by one, and only what is below them "from the cursor down":
/// tmux (its `scroll-on-clear`, on by default) moves the whole screen into its scrollback
/// when it is cleared from the top-left corner, which clearing the area at once is when
/// the area begins on the first row (an area as tall as the window, a run started on a
/// cleared screen): each redraw would leave a copy of the area in the scrollback.
///
/// More rows than the window has are as many as it has: moving up stops at the top.
fn erase(out: &mut impl Write, drawn: &[usize], (width, height): (u16, u16)) {
    let width = usize::from(width.max(1));
    let rows: usize = drawn.iter().map(|&w| w.div_ceil(width).max(1)).sum();
    if rows > 0 {
        let rows = u16::try_from(rows).map_or(height, |r| r.min(height));
        let _ = queue!(out, MoveToColumn(0), MoveUp(rows));
        for _ in 0..rows {
            let _ = queue!(out, Clear(ClearType::CurrentLine), MoveDown(1));
        }
        let _ = queue!(out, Clear(ClearType::FromCursorDown), MoveUp(rows));
    }
}

/// Erases the live area and shows the cursor.
fn clear_area(sc: &mut Screen) {
    let mut out = io::stdout().lock();
    erase(&mut out, &sc.drawn, screen_size());
    sc.drawn.clear();
    let _ = queue!(out, Show);
    let _ = out.flush();
}

/// Whether prun's process group is the foreground group of the terminal on its stdout
/// (true when stdout is no terminal: nothing to step aside for).
fn in_foreground() -> bool {
    use std::os::fd::AsFd;
    let out = io::stdout();
    nix::unistd::tcgetpgrp(out.as_fd()).map_or(true, |p| p == nix::unistd::getpgrp())
}

/// The terminal's columns and rows; 80 x 24 when it does not say. A terminal that reports
/// no size at all (0 x 0: a serial console, a container's terminal before its first resize)
/// counts as unknown too: read as 0 columns, every line drawn would count as a column of
/// rows, and erasing the live area would move up over what was on the screen before it.
fn screen_size() -> (u16, u16) {
    known_size(crossterm::terminal::size().ok())
}

fn known_size(size: Option<(u16, u16)>) -> (u16, u16) {
    match size {
        Some((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (80, 24),
    }
}

impl Reporter for LiveReporter {
    /// A proc already shown (watch mode restarts a proc whose inputs changed while it
    /// ran, without a final state in between) keeps its one line, with its clock restarted.
    fn started(&self, name: &str) {
        let expected = self.inner.expected(&Arc::from(name), true);
        let proc = Proc {
            name: name.to_string(),
            started: Instant::now(),
            expected,
            progress: None,
            retrying: false,
        };
        let mut sc = self.inner.screen.lock().expect("screen");
        match sc.running.iter_mut().find(|p| p.name == name) {
            Some(shown) => *shown = proc,
            None => sc.running.push(proc),
        }
    }

    fn would_run(&self, name: &str, what: &str) {
        self.inner
            .redraw(Some(&format!("{:<10} {name}: {what}", "WOULD RUN")));
    }

    /// The proc is queued again: its line says so until a reading of the queue finds it
    /// started (no event says when a retry starts).
    fn retrying(&self, name: &str, attempt: u32, error: &str) {
        {
            let mut sc = self.inner.screen.lock().expect("screen");
            if let Some(p) = sc.running.iter_mut().find(|p| p.name == name) {
                p.retrying = true;
            }
        }
        let first = error.lines().next().unwrap_or("");
        let line = format!(
            "{:<10} {name} (attempt {attempt} failed: {first})",
            "RETRYING"
        );
        self.inner.redraw(Some(&line));
    }

    fn finished(&self, f: &ProcSummary) {
        self.inner.learn(f);
        {
            let mut sc = self.inner.screen.lock().expect("screen");
            if let Some(i) = sc.running.iter().position(|p| p.name == *f.name) {
                sc.running.remove(i);
            }
            // As the summary counts: a proc whose dependency failed did not run.
            if f.state == State::Failed {
                sc.failed += 1;
            } else {
                sc.done += 1;
            }
        }
        let text = format_finished(f, self.inner.full_log.load(Ordering::Relaxed));
        let text = self.inner.paint(f.state, text);
        self.inner.redraw(Some(&text));
    }

    fn progress(&self, proc: &str, text: &str) {
        let mut sc = self.inner.screen.lock().expect("screen");
        if let Some(p) = sc.running.iter_mut().find(|p| p.name == proc) {
            p.progress = Some(text.to_string());
        }
    }

    fn command(&self, proc: Option<&str>, line: &dyn std::fmt::Display) {
        if self.inner.verbose {
            let text = match proc {
                Some(p) => format!("{:<10} {p}: $ {line}", ""),
                None => format!("{:<10} $ {line}", ""),
            };
            self.inner.redraw(Some(&text));
        }
    }

    fn message(&self, text: &str) {
        self.inner.redraw(Some(text));
    }

    fn warning(&self, text: &str) {
        self.eprint(&format!("prun: warning: {text}"));
    }

    fn eprint(&self, text: &str) {
        let mut sc = self.inner.screen.lock().expect("screen");
        let mut out = io::stdout().lock();
        erase(&mut out, &sc.drawn, screen_size());
        sc.drawn.clear();
        let _ = out.flush();
        drop(out);
        drop(sc);
        let _ = writeln!(io::stderr().lock(), "{}", super::colours_only(text));
        self.inner.redraw(None);
    }

    fn summary(&self, s: &Summary) {
        self.stop();
        let mut sc = self.inner.screen.lock().expect("screen");
        let mut out = io::stdout().lock();
        erase(&mut out, &sc.drawn, screen_size());
        sc.drawn.clear();
        sc.finished = true;
        let _ = queue!(out, Show);
        if !s.lists_targets {
            if let Some(line) = slowest_line(s) {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "{}", summary_line(s));
        }
        let _ = out.flush();
    }

    fn set_full_log(&self, on: bool) {
        self.inner.full_log.store(on, Ordering::Relaxed);
    }

    fn set_dynamic(&self, on: bool) {
        self.inner.dynamic.store(on, Ordering::Relaxed);
        self.inner.redraw(None);
    }

    fn output(&self, proc: &str, lines: &str) {
        self.inner.draw(Some(&mut |out, width| {
            out.write_all(super::output::prefixed(proc, lines, Some(width)).as_bytes())
        }));
    }

    fn group(&self, proc: &str, log: &std::path::Path) {
        self.inner.draw(Some(&mut |out, width| {
            super::output::write_group(out, proc, log, Some(width))
        }));
    }

    fn pause(&self) {
        let mut sc = self.inner.screen.lock().expect("screen");
        sc.paused = true;
        clear_area(&mut sc);
    }

    fn resume(&self) {
        if in_foreground() {
            super::end_partial_line();
        }
        self.inner.screen.lock().expect("screen").paused = false;
        self.inner.redraw(None);
    }

    /// The header's `done N of M` and time are the cycle's: a cycle re-runs some of
    /// the procs the run counted already.
    fn cycle_started(&self, procs: usize) {
        let mut sc = self.inner.screen.lock().expect("screen");
        sc.started = Instant::now();
        sc.done = 0;
        sc.failed = 0;
        sc.total = procs;
        sc.cycle = true;
    }

    fn cycle_grew(&self, more: usize) {
        let mut sc = self.inner.screen.lock().expect("screen");
        if sc.cycle {
            sc.total += more;
        }
    }
}

impl Drop for LiveReporter {
    fn drop(&mut self) {
        self.stop();
        let mut out = io::stdout().lock();
        let _ = queue!(out, Show);
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn an_expected_duration_not_known_yet_is_asked_again_and_a_known_one_is_kept() {
        let inner = Inner::new(false, false, false);
        let asked = Arc::new(AtomicUsize::new(0));
        let a = asked.clone();
        // The first answer comes before the task DB is open; the next ones from it.
        *inner.estimator.lock().expect("estimator") =
            Some(Box::new(move |_| match a.fetch_add(1, Ordering::SeqCst) {
                0 => None,
                _ => Some(Some(Duration::from_secs(3))),
            }));
        let name: Arc<str> = Arc::from("p");
        assert_eq!(inner.expected(&name, true), None);
        assert_eq!(inner.expected(&name, true), Some(Duration::from_secs(3)));
        assert_eq!(inner.expected(&name, true), Some(Duration::from_secs(3)));
        assert_eq!(asked.load(Ordering::SeqCst), 2, "a known answer is kept");
        // A proc without history is asked once.
        *inner.estimator.lock().expect("estimator") = Some(Box::new(|_| Some(None)));
        let q: Arc<str> = Arc::from("q");
        assert_eq!(inner.expected(&q, true), None);
        assert!(inner.expected.lock().expect("expected").contains_key(&q));
    }

    #[test]
    fn a_proc_started_before_the_task_db_was_open_gets_its_expected_duration_later() {
        let inner = Inner::new(false, false, false);
        let open = Arc::new(AtomicBool::new(false));
        let o = open.clone();
        *inner.estimator.lock().expect("estimator") = Some(Box::new(move |_| {
            o.load(Ordering::SeqCst)
                .then_some(Some(Duration::from_secs(3)))
        }));
        for name in ["p", "q"] {
            let expected = inner.expected(&Arc::from(name), true);
            inner.screen.lock().expect("screen").running.push(Proc {
                name: name.into(),
                started: Instant::now(),
                expected,
                progress: None,
                retrying: false,
            });
        }
        let shown = |inner: &Inner| -> Vec<Option<Duration>> {
            let sc = inner.screen.lock().expect("screen");
            sc.running.iter().map(|p| p.expected).collect()
        };
        inner.ask_again_for_running();
        assert_eq!(shown(&inner), [None, None], "the DB is not open yet");
        open.store(true, Ordering::SeqCst);
        // A reading of the queue taken while `q` still waited looked it up meanwhile.
        inner.expected(&Arc::from("q"), true);
        inner.ask_again_for_running();
        assert_eq!(shown(&inner), [Some(Duration::from_secs(3)); 2]);
    }
}
