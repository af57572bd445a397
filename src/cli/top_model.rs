//! `svc top`'s picture of the units: built from one `status` snapshot, kept current by svcd's
//! events, sampled every interval for CPU and memory. Pure: no terminal, no socket, the time
//! handed in, so that its tests run without either.

use crate::control::{HostInfo, UnitEvent, UnitInfo};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Samples of memory kept per unit for its sparkline.
pub const HISTORY: usize = 8;

/// The refresh intervals `+` and `-` step through.
pub const INTERVALS: [Duration; 7] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];

/// One unit as `svc top` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    /// When the unit entered its state, on this client's clock.
    pub since: Instant,
    pub restarts: u32,
    /// CPU seconds of the current run, as last sampled.
    pub cpu: f64,
    /// Percent of one core over the last interval; `None` until a rate can be given.
    pub cpu_percent: Option<f64>,
    /// When `cpu` was sampled, and for which main process: a rate needs two samples of one run.
    cpu_sampled: Option<(Instant, Option<u32>)>,
    pub rss: u64,
    pub swap: u64,
    /// The last [`HISTORY`] samples, oldest first.
    pub rss_history: VecDeque<u64>,
    pub swap_history: VecDeque<u64>,
    /// The text of the unit's last log line (without its time and stream).
    pub last_log: String,
}

impl Row {
    fn new(name: &str, now: Instant) -> Row {
        Row {
            name: name.to_string(),
            state: "inactive".to_string(),
            pid: None,
            since: now,
            restarts: 0,
            cpu: 0.0,
            cpu_percent: None,
            cpu_sampled: None,
            rss: 0,
            swap: 0,
            rss_history: VecDeque::with_capacity(HISTORY),
            swap_history: VecDeque::with_capacity(HISTORY),
            last_log: String::new(),
        }
    }

    /// Takes what svcd said of the unit. `sample`: this answer is the interval's sample, whose
    /// CPU and memory go into the rates and the histories.
    fn update(&mut self, info: &UnitInfo, now: Instant, sample: bool) {
        self.state.clone_from(&info.state);
        self.since = now
            .checked_sub(Duration::from_secs_f64(info.since_secs.max(0.0)))
            .unwrap_or(now);
        self.restarts = info.restarts;
        if let Some(line) = info.logs.last() {
            self.last_log = log_text(line).to_string();
        }
        if !sample {
            self.pid = info.pid;
            return;
        }
        self.cpu_percent = match self.cpu_sampled {
            Some((at, pid)) if pid == info.pid && info.cpu >= self.cpu && now > at => {
                Some((info.cpu - self.cpu) / (now - at).as_secs_f64() * 100.0)
            }
            // The first sample of a run: its average since the unit entered its state.
            _ if info.pid.is_some() && info.since_secs > 0.0 => {
                Some(info.cpu / info.since_secs * 100.0)
            }
            _ => None,
        };
        self.pid = info.pid;
        self.cpu = info.cpu;
        self.cpu_sampled = Some((now, info.pid));
        self.rss = info.memory.rss;
        self.swap = info.memory.swap;
        push(&mut self.rss_history, info.memory.rss);
        push(&mut self.swap_history, info.memory.swap);
    }
}

fn push(history: &mut VecDeque<u64>, value: u64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(value);
}

/// The text of a `TIME STREAM TEXT` log line.
fn log_text(line: &str) -> &str {
    let mut parts = line.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(text)) => text,
        _ => line,
    }
}

/// A column of the units' table; the ones with numbers, names and states also sort it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Name,
    State,
    Since,
    Restarts,
    Cpu,
    Rss,
    RssHistory,
    Swap,
    SwapHistory,
    Log,
}

impl Column {
    /// The next column to sort by, as `s` cycles.
    pub fn next_sort(self) -> Column {
        match self {
            Column::Name => Column::State,
            Column::State => Column::Since,
            Column::Since => Column::Restarts,
            Column::Restarts => Column::Cpu,
            Column::Cpu => Column::Rss,
            Column::Rss => Column::Swap,
            _ => Column::Name,
        }
    }

    pub fn sort_name(self) -> &'static str {
        match self {
            Column::State => "state",
            Column::Since => "since",
            Column::Restarts => "restarts",
            Column::Cpu => "cpu",
            Column::Rss => "rss",
            Column::Swap => "swap",
            _ => "name",
        }
    }
}

/// Problem states first when sorting by state.
fn state_rank(state: &str) -> u8 {
    match state {
        "failed" => 0,
        "backoff" => 1,
        "starting" => 2,
        "stopping" => 3,
        "running" => 4,
        "exited" => 5,
        _ => 6,
    }
}

/// Every unit svcd knows, the host, and how the user looks at them.
#[derive(Debug)]
pub struct Model {
    /// In name order.
    rows: Vec<Row>,
    pub host: Option<HostInfo>,
    pub sort: Column,
    /// Rows whose name or state contains it (case-insensitive) are shown; empty: all.
    pub filter: String,
    /// The selected unit, by name, so that a re-sort or a new unit does not move it.
    pub selected: Option<String>,
    pub interval: Duration,
}

impl Model {
    pub fn new(interval: Duration) -> Model {
        Model {
            rows: Vec::new(),
            host: None,
            sort: Column::Name,
            filter: String::new(),
            selected: None,
            interval,
        }
    }

    /// Takes an answer to `status`. `all`: it lists every unit (units it lacks are gone) and
    /// is the interval's sample of CPU and memory; else it lists the units an event named.
    pub fn apply_status(
        &mut self,
        units: &[UnitInfo],
        host: Option<HostInfo>,
        now: Instant,
        all: bool,
    ) {
        if all {
            self.rows
                .retain(|row| units.iter().any(|u| u.name == row.name));
        }
        for info in units {
            let index = self.index_or_insert(&info.name, now);
            self.rows[index].update(info, now, all);
        }
        if host.is_some() {
            self.host = host;
        }
        if self.selected.is_none() || self.selected_index().is_none() {
            self.selected = self.visible().first().map(|row| row.name.clone());
        }
    }

    /// Takes a change of state as svcd announced it; the next `status` of the unit brings its
    /// restarts and log line.
    pub fn apply_event(&mut self, event: &UnitEvent, now: Instant) {
        let index = self.index_or_insert(&event.unit, now);
        let row = &mut self.rows[index];
        row.state.clone_from(&event.new);
        row.pid = event.pid;
        row.since = now;
    }

    fn index_or_insert(&mut self, name: &str, now: Instant) -> usize {
        match self
            .rows
            .binary_search_by(|row| row.name.as_str().cmp(name))
        {
            Ok(index) => index,
            Err(index) => {
                self.rows.insert(index, Row::new(name, now));
                index
            }
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows shown: filtered, sorted; numbers biggest first, names and states A to Z.
    pub fn visible(&self) -> Vec<&Row> {
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .rows
            .iter()
            .filter(|row| {
                filter.is_empty()
                    || row.name.to_lowercase().contains(&filter)
                    || row.state.contains(&filter)
            })
            .collect();
        let cpu = |row: &Row| row.cpu_percent.unwrap_or(-1.0);
        match self.sort {
            Column::State => rows.sort_by_key(|row| state_rank(&row.state)),
            Column::Since => rows.sort_by_key(|row| std::cmp::Reverse(row.since)),
            Column::Restarts => rows.sort_by_key(|row| std::cmp::Reverse(row.restarts)),
            Column::Cpu => rows.sort_by(|a, b| cpu(b).total_cmp(&cpu(a))),
            Column::Rss => rows.sort_by_key(|row| std::cmp::Reverse(row.rss)),
            Column::Swap => rows.sort_by_key(|row| std::cmp::Reverse(row.swap)),
            _ => {}
        }
        rows
    }

    /// The selected row's place among the visible ones.
    pub fn selected_index(&self) -> Option<usize> {
        let name = self.selected.as_deref()?;
        self.visible().iter().position(|row| row.name == name)
    }

    /// Moves the selection by `delta` rows, within the visible ones.
    pub fn move_selection(&mut self, delta: isize) {
        let visible = self.visible();
        let Some(last) = visible.len().checked_sub(1) else {
            return;
        };
        let at = self.selected_index().unwrap_or(0);
        let to = at.saturating_add_signed(delta).min(last);
        self.selected = Some(visible[to].name.clone());
    }

    /// Keeps the selection on a visible row after the filter changed.
    pub fn reselect(&mut self) {
        if self.selected_index().is_none() {
            self.selected = self.visible().first().map(|row| row.name.clone());
        }
    }

    /// `+` (`slower`) or `-`: the next interval of [`INTERVALS`].
    pub fn step_interval(&mut self, slower: bool) {
        let at = INTERVALS
            .iter()
            .position(|i| *i >= self.interval)
            .unwrap_or(INTERVALS.len() - 1);
        let to = if slower {
            (at + usize::from(INTERVALS[at] <= self.interval)).min(INTERVALS.len() - 1)
        } else {
            at.saturating_sub(1)
        };
        self.interval = INTERVALS[to];
    }

    /// How many units are in each state, problem states first.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for row in &self.rows {
            match counts.iter_mut().find(|(state, _)| *state == row.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((row.state.clone(), 1)),
            }
        }
        counts.sort_by_key(|(state, _)| state_rank(state));
        counts
    }
}

#[cfg(test)]
#[path = "top_model_tests.rs"]
pub(crate) mod tests;
