//! `svc top`'s keys: what each does to the view, and what it asks of svcd. Pure, so that every
//! key is tested without a terminal.

use super::top_model::{Column, Model};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Table,
    /// Typing the filter after `/`.
    Filter,
    Help,
    Log(LogView),
}

/// A unit's log, full screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogView {
    pub name: String,
    /// `TIME STREAM TEXT`, oldest first.
    pub lines: Vec<String>,
    /// How many lines up from the last one the view is scrolled (0: it follows new lines).
    pub from_bottom: usize,
}

/// The view's state besides the units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    pub mode: Mode,
    /// The last command's outcome, or an error, for the status line: (text, is an error).
    pub message: Option<(String, bool)>,
    /// Why svcd cannot be reached, while it cannot.
    pub gone: Option<String>,
    /// The first unit row on screen (kept so that the table does not jump).
    pub offset: usize,
    /// Rows of units the last frame had room for: what PgUp and PgDn move by.
    pub page: usize,
}

/// A command for the selected unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
}

/// What a key asks of the caller, beyond redrawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    Send(Verb, String),
    /// Read the unit's log into the log view.
    ReadLog(String),
    /// The interval changed: sample again on the new one.
    Resample,
}

impl Ui {
    pub fn new() -> Ui {
        Ui {
            mode: Mode::Table,
            message: None,
            gone: None,
            offset: 0,
            page: 10,
        }
    }

    /// Takes a key press.
    pub fn handle_key(&mut self, model: &mut Model, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            return Action::Quit;
        }
        match &mut self.mode {
            Mode::Help => {
                self.mode = Mode::Table;
                Action::None
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Table,
                    KeyCode::Esc => {
                        model.filter.clear();
                        self.mode = Mode::Table;
                    }
                    KeyCode::Backspace => {
                        model.filter.pop();
                    }
                    KeyCode::Char(c) if !ctrl => model.filter.push(c),
                    _ => {}
                }
                model.reselect();
                Action::None
            }
            Mode::Log(log) => {
                let page = self.page.max(1);
                let most = log.lines.len().saturating_sub(1);
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc | KeyCode::Char('l') | KeyCode::Left => {
                        self.mode = Mode::Table;
                        return Action::None;
                    }
                    KeyCode::Up | KeyCode::Char('k') => log.from_bottom += 1,
                    KeyCode::Down | KeyCode::Char('j') => {
                        log.from_bottom = log.from_bottom.saturating_sub(1)
                    }
                    KeyCode::PageUp => log.from_bottom += page,
                    KeyCode::PageDown => log.from_bottom = log.from_bottom.saturating_sub(page),
                    KeyCode::Home | KeyCode::Char('g') => log.from_bottom = most,
                    KeyCode::End | KeyCode::Char('G') => log.from_bottom = 0,
                    _ => {}
                }
                log.from_bottom = log.from_bottom.min(most);
                Action::None
            }
            Mode::Table => self.table_key(model, key),
        }
    }

    fn table_key(&mut self, model: &mut Model, key: KeyEvent) -> Action {
        // The last command's outcome stays until the next key.
        self.message = None;
        let page = self.page.max(1) as isize;
        let selected = model.selected.clone();
        let send = |verb| match selected.clone() {
            Some(name) => Action::Send(verb, name),
            None => Action::None,
        };
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => self.mode = Mode::Help,
            KeyCode::Char('/') => self.mode = Mode::Filter,
            KeyCode::Esc => {
                model.filter.clear();
                model.reselect();
            }
            KeyCode::Char('s') => model.sort = model.sort.next_sort(),
            KeyCode::Char('n') => model.sort = Column::Name,
            KeyCode::Up | KeyCode::Char('k') => model.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => model.move_selection(1),
            KeyCode::PageUp => model.move_selection(-page),
            KeyCode::PageDown => model.move_selection(page),
            KeyCode::Home | KeyCode::Char('g') => model.move_selection(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => model.move_selection(isize::MAX),
            KeyCode::Char('+') => {
                model.step_interval(true);
                return Action::Resample;
            }
            KeyCode::Char('-') => {
                model.step_interval(false);
                return Action::Resample;
            }
            KeyCode::Char('r') => return send(Verb::Restart),
            KeyCode::Char('S') => return send(Verb::Stop),
            KeyCode::Char('t') => return send(Verb::Start),
            KeyCode::Char('l') | KeyCode::Enter => {
                if let Some(name) = selected {
                    self.mode = Mode::Log(LogView {
                        name: name.clone(),
                        lines: Vec::new(),
                        from_bottom: 0,
                    });
                    return Action::ReadLog(name);
                }
            }
            _ => {}
        }
        Action::None
    }
}

impl Default for Ui {
    fn default() -> Self {
        Ui::new()
    }
}

/// The keys, as `?` lists them.
pub const HELP: &[(&str, &str)] = &[
    ("Up/Down j/k", "select a unit (PgUp/PgDn, Home/End)"),
    ("s", "sort by the next column (n: by name)"),
    ("/", "filter by name or state (Enter keeps it, Esc clears)"),
    ("r", "restart the selected unit"),
    ("S", "stop it"),
    ("t", "start it"),
    ("l, Enter", "its log (Up/Down/PgUp/PgDn scroll, q back)"),
    ("+ / -", "sample CPU and memory less / more often"),
    ("?", "this help (any key closes it)"),
    ("q", "quit"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::top_model::tests::info;
    use std::time::{Duration, Instant};

    fn press(ui: &mut Ui, model: &mut Model, code: KeyCode) -> Action {
        ui.handle_key(model, KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn model(names: &[&str]) -> Model {
        let mut model = Model::new(Duration::from_secs(2));
        let units: Vec<_> = names
            .iter()
            .map(|name| info(name, "running", Some(1), 0.0, 0))
            .collect();
        model.apply_status(&units, None, Instant::now(), true);
        model
    }

    #[test]
    fn filter_then_act_on_the_selected_unit() {
        let mut model = model(&["api", "chat", "web"]);
        let mut ui = Ui::new();
        assert_eq!(press(&mut ui, &mut model, KeyCode::Char('/')), Action::None);
        for c in "cha".chars() {
            press(&mut ui, &mut model, KeyCode::Char(c));
        }
        // Keys typed into the filter are text, not commands.
        press(&mut ui, &mut model, KeyCode::Char('q'));
        press(&mut ui, &mut model, KeyCode::Backspace);
        press(&mut ui, &mut model, KeyCode::Enter);
        assert_eq!(model.filter, "cha");
        assert_eq!(ui.mode, Mode::Table);
        let restart = press(&mut ui, &mut model, KeyCode::Char('r'));
        assert_eq!(restart, Action::Send(Verb::Restart, "chat".into()));
        let stop = press(&mut ui, &mut model, KeyCode::Char('S'));
        assert_eq!(stop, Action::Send(Verb::Stop, "chat".into()));
        ui.message = Some(("stopping chat".into(), false));
        press(&mut ui, &mut model, KeyCode::Esc);
        assert!(model.filter.is_empty());
        assert_eq!(
            ui.message, None,
            "a command's outcome stays until the next key"
        );
        press(&mut ui, &mut model, KeyCode::Down);
        let start = press(&mut ui, &mut model, KeyCode::Char('t'));
        assert_eq!(start, Action::Send(Verb::Start, "web".into()));
    }

    #[test]
    fn the_log_view_scrolls_and_q_goes_back_then_quits() {
        let mut model = model(&["api"]);
        let mut ui = Ui::new();
        assert_eq!(
            press(&mut ui, &mut model, KeyCode::Enter),
            Action::ReadLog("api".into())
        );
        if let Mode::Log(log) = &mut ui.mode {
            log.lines = (0..50).map(|n| n.to_string()).collect();
        }
        ui.page = 20;
        press(&mut ui, &mut model, KeyCode::PageUp);
        press(&mut ui, &mut model, KeyCode::Up);
        press(&mut ui, &mut model, KeyCode::PageUp);
        press(&mut ui, &mut model, KeyCode::PageUp);
        assert!(matches!(&ui.mode, Mode::Log(log) if log.from_bottom == 49));
        press(&mut ui, &mut model, KeyCode::End);
        assert!(matches!(&ui.mode, Mode::Log(log) if log.from_bottom == 0));
        assert_eq!(press(&mut ui, &mut model, KeyCode::Char('q')), Action::None);
        assert_eq!(ui.mode, Mode::Table);
        assert_eq!(press(&mut ui, &mut model, KeyCode::Char('q')), Action::Quit);
    }

    #[test]
    fn help_closes_on_any_key_and_ctrl_c_quits_anywhere() {
        let mut model = model(&["api"]);
        let mut ui = Ui::new();
        press(&mut ui, &mut model, KeyCode::Char('?'));
        assert_eq!(ui.mode, Mode::Help);
        assert_eq!(press(&mut ui, &mut model, KeyCode::Char('q')), Action::None);
        assert_eq!(ui.mode, Mode::Table);
        press(&mut ui, &mut model, KeyCode::Char('/'));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(ui.handle_key(&mut model, ctrl_c), Action::Quit);
        assert_eq!(press(&mut ui, &mut model, KeyCode::Char('+')), Action::None);
    }
}
