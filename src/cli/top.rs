//! `svc top`: a live view of the units in the terminal, or plain-text snapshots (`--batch`, or a
//! stdout that is no terminal).
//!
//! One `status` request brings every unit, the host and svcd's own memory, answered from
//! svcd's cached samples; it is asked again every interval (2 s by default) for the CPU and
//! memory figures. Changes of state come as svcd sends them (the `events` stream, read by a
//! thread of its own), each followed by a `status` of just the units that changed, so a crash
//! shows at once without asking svcd for everything often.
//!
//! When svcd goes away (it stopped, or it re-executes itself), the view stays, says "svcd gone"
//! and asks again every second until it answers; `q` quits meanwhile. The terminal is restored
//! however `svc top` ends: `q`, Ctrl-C, SIGINT, SIGTERM, SIGHUP, or a panic.

use super::top_keys::{Action, LogView, Mode, Ui, Verb};
use super::top_model::Model;
use super::{Timeouts, exit, warn};
use crate::control::client;
use crate::control::{Command, Response, UnitEvent};
use ratatui::crossterm::{cursor, event, execute, terminal};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Lines of a unit's log the log view reads.
const LOG_LINES: usize = 2000;

/// How often to try svcd again while it is gone.
const RETRY: Duration = Duration::from_secs(1);

/// What wakes the view up.
enum Wake {
    Key(event::Event),
    Unit(UnitEvent),
    /// The events stream ended, with why; `gone`: svcd went away (else it dropped a reader
    /// that fell behind, and a full sample catches up).
    EventsEnded {
        why: String,
        gone: bool,
    },
    Signal(i32),
}

/// Runs `svc top`; `batch`: that many plain-text snapshots (also the default, 1, when stdout
/// is no terminal).
pub fn run(socket: PathBuf, interval: Duration, batch: Option<u32>, timeouts: Timeouts) -> u8 {
    use std::io::IsTerminal;
    let mut model = Model::new(interval);
    // The first answer decides: svcd unreachable is an error before the screen is touched.
    if let Err(e) = refresh(&socket, &mut model, &[], timeouts) {
        warn(format_args!("svc: {e}"));
        return exit::FAILED;
    }
    match batch {
        None if std::io::stdout().is_terminal() => interactive(socket, model, timeouts),
        batch => snapshots(&socket, model, batch.unwrap_or(1), timeouts),
    }
}

/// Asks svcd for `names` (none: every unit, the interval's sample) and takes the answer.
fn refresh(
    socket: &Path,
    model: &mut Model,
    names: &[String],
    timeouts: Timeouts,
) -> Result<(), String> {
    let command = Command::Status {
        names: names.to_vec(),
    };
    let response = client::request(socket, command, timeouts.quick()).map_err(|e| e.to_string())?;
    let response = answer(response)?;
    let host = response.host.map(|host| *host);
    let units = response.units.unwrap_or_default();
    model.apply_status(&units, host, Instant::now(), names.is_empty());
    Ok(())
}

/// The answer, or its error's message.
fn answer(response: Response) -> Result<Response, String> {
    match response.error {
        Some(error) => Err(error.message),
        None => Ok(response),
    }
}

/// `count` snapshots as text, `interval` apart.
fn snapshots(socket: &Path, mut model: Model, count: u32, timeouts: Timeouts) -> u8 {
    for n in 0..count.max(1) {
        if n > 0 {
            std::thread::sleep(model.interval);
            if let Err(e) = refresh(socket, &mut model, &[], timeouts) {
                warn(format_args!("svc: {e}"));
                return exit::FAILED;
            }
        }
        let mut text = super::top_view::text(&model, Instant::now());
        if count > 1 {
            text.push('\n');
        }
        match super::print(&text) {
            Ok(true) => {}
            Ok(false) => return exit::OK,
            Err(e) => {
                warn(format_args!("svc: writing to stdout: {e}"));
                return exit::FAILED;
            }
        }
    }
    exit::OK
}

/// The terminal in raw mode on the alternate screen, given back when dropped.
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode, shows the cursor; errors are ignored (the
/// terminal may be gone).
fn restore() {
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

/// The live view, until `q`, Ctrl-C or a signal.
fn interactive(socket: PathBuf, mut model: Model, timeouts: Timeouts) -> u8 {
    use nix::sys::signal::{SigSet, Signal};
    // SIGINT, SIGTERM, SIGHUP are taken by a thread of their own (every thread started after
    // this inherits the mask), so that the terminal is restored before svc exits.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        warn(format_args!("svc: blocking signals: {e}"));
        return exit::FAILED;
    }
    let (wake, woken) = mpsc::channel();
    spawn_signals(signals, wake.clone());
    spawn_events(socket.clone(), wake.clone());
    let screen = match Screen::enter() {
        Ok(screen) => screen,
        Err(e) => {
            restore();
            warn(format_args!("svc: cannot use the terminal: {e}"));
            return exit::FAILED;
        }
    };
    spawn_keys(wake);
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = match ratatui::Terminal::new(backend) {
        Ok(terminal) => terminal,
        Err(e) => {
            drop(screen);
            warn(format_args!("svc: cannot use the terminal: {e}"));
            return exit::FAILED;
        }
    };
    let mut ui = Ui::new();
    let mut next_sample = Instant::now() + model.interval;
    let code = loop {
        if let Err(e) = terminal.draw(|frame| {
            super::top_view::draw(frame, &model, &mut ui, Instant::now());
        }) {
            drop(screen);
            warn(format_args!("svc: drawing: {e}"));
            return exit::FAILED;
        }
        let first = match woken.recv_timeout(next_sample.saturating_duration_since(Instant::now()))
        {
            Ok(wake) => wake,
            Err(RecvTimeoutError::Timeout) => {
                let sampled = refresh(&socket, &mut model, &[], timeouts);
                ui.gone = sampled.err();
                if ui.gone.is_none() {
                    reread_log(&socket, &mut ui, timeouts);
                }
                let wait = if ui.gone.is_some() {
                    RETRY
                } else {
                    model.interval
                };
                next_sample = Instant::now() + wait;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break exit::FAILED,
        };
        // Everything that came meanwhile, then one `status` of the units that changed.
        let mut changed: Vec<String> = Vec::new();
        let mut quit = None;
        for wake in std::iter::once(first).chain(woken.try_iter()) {
            match wake {
                Wake::Unit(event) => {
                    model.apply_event(&event, Instant::now());
                    if !changed.contains(&event.unit) {
                        changed.push(event.unit);
                    }
                }
                Wake::EventsEnded { why, gone: true } => {
                    ui.gone = Some(why);
                    next_sample = next_sample.min(Instant::now() + RETRY);
                }
                Wake::EventsEnded { gone: false, .. } => next_sample = Instant::now(),
                Wake::Signal(signal) => quit = Some(128 + signal as u8),
                Wake::Key(event::Event::Key(key)) => match ui.handle_key(&mut model, key) {
                    Action::None => {}
                    Action::Quit => quit = Some(exit::OK),
                    Action::Send(verb, name) => {
                        ui.message = Some(send(&socket, verb, &name, timeouts));
                    }
                    Action::ReadLog(_) => reread_log(&socket, &mut ui, timeouts),
                    Action::Resample => next_sample = Instant::now(),
                },
                Wake::Key(_) => {}
            }
        }
        if let Some(code) = quit {
            break code;
        }
        if !changed.is_empty() && ui.gone.is_none() {
            // A unit that is gone by now is left to the next full sample.
            let _ = refresh(&socket, &mut model, &changed, timeouts);
        }
    };
    drop(terminal);
    drop(screen);
    code
}

/// Sends `verb` for `name` without waiting for the unit (its changes come as events); the
/// status line's text: what was asked, or svcd's refusal.
fn send(socket: &Path, verb: Verb, name: &str, timeouts: Timeouts) -> (String, bool) {
    let names = vec![name.to_string()];
    let (command, doing) = match verb {
        Verb::Start => (Command::Start { names, wait: false }, "starting"),
        Verb::Stop => (Command::Stop { names, wait: false }, "stopping"),
        Verb::Restart => (Command::Restart { names, wait: false }, "restarting"),
    };
    match client::request(socket, command, timeouts.quick()).map_err(|e| e.to_string()) {
        Ok(response) => match answer(response) {
            Ok(_) => (format!("{doing} {name}"), false),
            Err(why) => (format!("{name}: {why}"), true),
        },
        Err(why) => (why, true),
    }
}

/// Reads the log view's unit's last lines again, if the log view is open.
fn reread_log(socket: &Path, ui: &mut Ui, timeouts: Timeouts) {
    let Mode::Log(LogView { name, lines, .. }) = &mut ui.mode else {
        return;
    };
    let command = Command::Logs {
        names: vec![name.clone()],
        lines: LOG_LINES,
        follow: false,
    };
    let mut read = Vec::new();
    let result = client::stream(socket, command, timeouts.quick(), |event| {
        if let Some(line) = event.log {
            read.push(format!("{} {} {}", line.time, line.stream, line.line));
        }
        true
    });
    match result
        .map_err(|e| e.to_string())
        .and_then(|(r, _)| answer(r))
    {
        Ok(_) => *lines = read,
        Err(why) => ui.message = Some((why, true)),
    }
}

/// Reads svcd's events for as long as the view listens: again at once when svcd dropped it for
/// falling behind, after a second when svcd went away.
fn spawn_events(socket: PathBuf, wake: Sender<Wake>) {
    std::thread::spawn(move || {
        loop {
            let mut listening = true;
            let result = client::stream(&socket, Command::Events {}, None, |event| {
                if let Some(event) = event.event {
                    listening = wake.send(Wake::Unit(event)).is_ok();
                }
                listening
            });
            if !listening {
                return;
            }
            let (why, gone) = match result {
                Ok((response, _)) if !response.ok => {
                    (answer(response).err().unwrap_or_default(), true)
                }
                Ok((_, client::StreamEnd::End(Some(why)))) => (why, false),
                Ok(_) => ("svcd closed the connection".to_string(), true),
                Err(e) => (e.to_string(), true),
            };
            if wake.send(Wake::EventsEnded { why, gone }).is_err() {
                return;
            }
            if gone {
                std::thread::sleep(RETRY);
            }
        }
    });
}

/// Reads the terminal's keys (and resizes).
fn spawn_keys(wake: Sender<Wake>) {
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if wake.send(Wake::Key(event)).is_err() {
                return;
            }
        }
    });
}

/// Waits for `signals` (blocked in every thread) and says which came.
fn spawn_signals(signals: nix::sys::signal::SigSet, wake: Sender<Wake>) {
    std::thread::spawn(move || {
        while let Ok(signal) = signals.wait() {
            if wake.send(Wake::Signal(signal as i32)).is_err() {
                return;
            }
        }
    });
}
