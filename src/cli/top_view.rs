//! `svc top`'s screen: the header, the host's bars, the units' table (its columns chosen to fit
//! the width), the status line, the help and the log view; and the plain text of `--batch`.

use super::render::size;
use super::top_keys::{HELP, Mode, Ui};
use super::top_model::{Column, Model, Row};
use crate::control::HostInfo;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Table, TableState};
use std::fmt::Write;
use std::time::{Duration, Instant};

/// The optional columns, the first dropped last as the width shrinks.
const OPTIONAL: [Column; 7] = [
    Column::Restarts,
    Column::Cpu,
    Column::Rss,
    Column::Since,
    Column::RssHistory,
    Column::Swap,
    Column::SwapHistory,
];

/// Room kept for the last log line before the lesser columns get any.
const LOG_ROOM: u16 = 20;

impl Column {
    fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::State => "STATE",
            Column::Since => "SINCE",
            Column::Restarts => "RESTARTS",
            Column::Cpu => "CPU%",
            Column::Rss => "RSS",
            Column::RssHistory => "RSS HIST",
            Column::Swap => "SWAP",
            Column::SwapHistory => "SWAP HIST",
            Column::Log => "LAST LOG LINE",
        }
    }

    /// Its width; `name` is the width of the longest unit name.
    fn width(self, name: u16) -> u16 {
        match self {
            Column::Name => name.clamp(4, 24),
            Column::State => 8,
            Column::Since | Column::Restarts | Column::Swap => 8,
            Column::Cpu | Column::Rss => 6,
            Column::RssHistory => 8,
            Column::SwapHistory => 9,
            Column::Log => 0,
        }
    }

    fn right_aligned(self) -> bool {
        matches!(
            self,
            Column::Since | Column::Restarts | Column::Cpu | Column::Rss | Column::Swap
        )
    }

    /// The cell's text for `row`.
    fn text(self, row: &Row, now: Instant) -> String {
        match self {
            Column::Name => row.name.clone(),
            Column::State => row.state.clone(),
            Column::Since => short_span(now.saturating_duration_since(row.since)),
            Column::Restarts => row.restarts.to_string(),
            Column::Cpu => row
                .cpu_percent
                .map_or_else(|| "-".to_string(), |p| format!("{p:.1}")),
            Column::Rss => size(row.rss),
            Column::RssHistory => sparkline(row.rss_history.iter().copied()),
            Column::Swap => size(row.swap),
            Column::SwapHistory => sparkline(row.swap_history.iter().copied()),
            Column::Log => crate::logs::escape_controls(&row.last_log).into_owned(),
        }
    }
}

/// The columns that fit in `width`, with their widths; the log line takes what is left.
pub fn columns(width: u16, name: u16) -> Vec<(Column, u16)> {
    let mut chosen = vec![
        (Column::Name, Column::Name.width(name)),
        (Column::State, Column::State.width(name)),
    ];
    let used = |chosen: &[(Column, u16)]| -> u16 { chosen.iter().map(|(_, w)| w + 1).sum() };
    for column in OPTIONAL {
        let wanted = column.width(name) + 1;
        if used(&chosen) + wanted + LOG_ROOM <= width {
            chosen.push((column, column.width(name)));
        }
    }
    // The table's order (the enum's), whatever the order of dropping.
    chosen.sort_by_key(|(c, _)| *c);
    let left = width.saturating_sub(used(&chosen));
    if left >= 8 {
        chosen.push((Column::Log, left));
    }
    chosen
}

/// `850ms`, `42s`, `5m03s`, `3h02m`, `12d04h`: at most 6 characters.
fn short_span(span: Duration) -> String {
    let secs = span.as_secs();
    match secs {
        0 => format!("{}ms", span.as_millis()),
        1..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
        _ => format!("{}d{:02}h", secs / 86400, secs / 3600 % 24),
    }
}

/// The samples as bars `▁` to `█`, scaled to their largest; empty without samples.
pub fn sparkline(values: impl Iterator<Item = u64> + Clone) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let most = values.clone().max().unwrap_or(0);
    values
        .map(|v| {
            if most == 0 {
                BARS[0]
            } else {
                BARS[((v as u128 * 7 + most as u128 / 2) / most as u128) as usize]
            }
        })
        .collect()
}

/// `[█████░░░░░]` for `used` of `total`, `width` cells inside the brackets.
fn bar(used: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((used as u128 * width as u128 + total as u128 / 2) / total as u128) as usize
    };
    let filled = filled.min(width);
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

fn state_style(state: &str) -> Style {
    let color = match state {
        "running" => Color::Green,
        "starting" | "stopping" => Color::Yellow,
        "backoff" => Color::Magenta,
        "failed" => Color::Red,
        "exited" => Color::Blue,
        _ => Color::DarkGray,
    };
    Style::default().fg(color)
}

/// The first line: svcd's own memory, the units per state, the interval and the sort.
pub fn header(model: &Model, gone: bool) -> String {
    let own = model
        .host
        .as_ref()
        .and_then(|h| h.svcd_rss)
        .map_or_else(|| "?".to_string(), size);
    let counts: Vec<String> = model
        .counts()
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let svcd = if gone {
        "svcd gone".to_string()
    } else {
        format!("svcd {own}")
    };
    format!(
        "svc top - {svcd} - {} units: {} - every {} - sort {}",
        model.rows().len(),
        counts.join(", "),
        crate::time::human_span(model.interval),
        model.sort.sort_name(),
    )
}

/// The host's memory, swap and pressure, with bars of `bar_width`.
pub fn host_line(host: &HostInfo, bar_width: usize) -> String {
    let percent = |used: u64, total: u64| (used * 100).checked_div(total).unwrap_or(0);
    let mut line = format!(
        "mem {} {}% {}/{}  swap {} {}% {}/{}",
        bar(host.mem_used, host.mem_total, bar_width),
        percent(host.mem_used, host.mem_total),
        size(host.mem_used),
        size(host.mem_total),
        bar(host.swap_used, host.swap_total, bar_width),
        percent(host.swap_used, host.swap_total),
        size(host.swap_used),
        size(host.swap_total),
    );
    // The share of time some task stalled on memory (the bar), and all did.
    if let Some(some) = host.pressure_some_avg10 {
        let stalled = bar((some * 10.0) as u64, 1000, bar_width);
        let _ = write!(line, "  psi {stalled} {some:.1}");
        if let Some(full) = host.pressure_full_avg10 {
            let _ = write!(line, "/{full:.1}");
        }
        line.push('%');
    }
    if host.level != "ok" {
        let _ = write!(line, " [{}]", host.level);
    }
    line
}

fn name_width(model: &Model) -> u16 {
    let longest = model.rows().iter().map(|r| r.name.chars().count()).max();
    u16::try_from(longest.unwrap_or(4)).unwrap_or(u16::MAX)
}

/// Draws the whole screen; remembers in `ui` the table's scroll and page height.
pub fn draw(frame: &mut Frame, model: &Model, ui: &mut Ui, now: Instant) {
    let area = frame.area();
    let [top, hostline, table, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    ui.page = usize::from(table.height.saturating_sub(1));
    if let Mode::Log(log) = &ui.mode {
        draw_log(frame, area, &log.name, &log.lines, log.from_bottom);
        return;
    }
    let head_style = Style::default().add_modifier(Modifier::BOLD);
    frame.render_widget(
        Paragraph::new(header(model, ui.gone.is_some())).style(head_style),
        top,
    );
    if let Some(host) = &model.host {
        let bar_width = if hostline.width >= 100 { 16 } else { 6 };
        let style = match host.level.as_str() {
            "ok" => Style::default(),
            "warn" => Style::default().fg(Color::Yellow),
            _ => Style::default().fg(Color::Red),
        };
        frame.render_widget(
            Paragraph::new(host_line(host, bar_width)).style(style),
            hostline,
        );
    }
    draw_table(frame, model, ui, table, now);
    frame.render_widget(status_line(model, ui), status);
    if ui.mode == Mode::Help {
        draw_help(frame, area);
    }
}

fn draw_table(frame: &mut Frame, model: &Model, ui: &mut Ui, area: Rect, now: Instant) {
    let columns = columns(area.width, name_width(model));
    let header = ratatui::widgets::Row::new(columns.iter().map(|(c, _)| {
        let style = if model.sort == *c {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        Cell::from(align(c.title(), *c, columns_width(&columns, *c))).style(style)
    }));
    let visible = model.visible();
    let rows = visible.iter().map(|row| {
        ratatui::widgets::Row::new(columns.iter().map(|(c, w)| {
            let cell = Cell::from(align(&c.text(row, now), *c, *w));
            if *c == Column::State {
                cell.style(state_style(&row.state))
            } else {
                cell
            }
        }))
    });
    let widths = columns.iter().map(|(_, w)| Constraint::Length(*w));
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::new()
        .with_offset(ui.offset)
        .with_selected(model.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
    ui.offset = state.offset();
}

fn columns_width(columns: &[(Column, u16)], column: Column) -> u16 {
    columns
        .iter()
        .find(|(c, _)| *c == column)
        .map_or(0, |(_, w)| *w)
}

/// `text` padded to `width` on the left for number columns.
fn align(text: &str, column: Column, width: u16) -> String {
    if column.right_aligned() {
        format!("{text:>width$}", width = usize::from(width))
    } else {
        text.to_string()
    }
}

/// The bottom line: the filter being typed, svcd gone, a command's outcome, or the keys.
fn status_line<'a>(model: &Model, ui: &Ui) -> Paragraph<'a> {
    if ui.mode == Mode::Filter {
        return Paragraph::new(format!("/{}_", model.filter));
    }
    if let Some(why) = &ui.gone {
        return Paragraph::new(format!("svcd gone ({why}); retrying, q quits"))
            .style(Style::default().fg(Color::Red));
    }
    if let Some((text, error)) = &ui.message {
        let style = if *error {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        };
        return Paragraph::new(text.clone()).style(style);
    }
    let filter = if model.filter.is_empty() {
        String::new()
    } else {
        format!("filter \"{}\" (Esc clears)  ", model.filter)
    };
    Paragraph::new(Line::from(vec![
        Span::raw(filter),
        Span::styled(
            "q quit  ? help  / filter  s sort  r restart  S stop  t start  l log  +/- rate",
            Style::default().fg(Color::DarkGray),
        ),
    ]))
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let width = area.width.min(72);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{key:>12}  "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

fn draw_log(frame: &mut Frame, area: Rect, name: &str, lines: &[String], from_bottom: usize) {
    let inner = usize::from(area.height.saturating_sub(2));
    let end = lines.len().saturating_sub(from_bottom);
    let start = end.saturating_sub(inner);
    let text: Vec<Line> = lines[start..end]
        .iter()
        .map(|line| Line::raw(crate::logs::escape_controls(line).into_owned()))
        .collect();
    let title = format!(
        " log of {name}: lines {}-{} of {} (Up/Down/PgUp/PgDn scroll, q back) ",
        start + usize::from(end > start),
        end,
        lines.len()
    );
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// `--batch` and a stdout that is no terminal: the header, the host line and every unit with
/// every column, as plain text.
pub fn text(model: &Model, now: Instant) -> String {
    let mut out = header(model, false);
    out.push('\n');
    if let Some(host) = &model.host {
        out.push_str(&host_line(host, 10));
        out.push('\n');
    }
    let all = [
        Column::Name,
        Column::State,
        Column::Since,
        Column::Restarts,
        Column::Cpu,
        Column::Rss,
        Column::RssHistory,
        Column::Swap,
        Column::SwapHistory,
    ];
    let name = usize::from(name_width(model).max(4));
    let width = |c: Column| match c {
        Column::Name => name,
        c => usize::from(c.width(0)),
    };
    let cell = |c: Column, text: &str| {
        if c.right_aligned() {
            format!("{text:>w$} ", w = width(c))
        } else {
            // Sparklines are narrower in bytes' terms than their width; pad by characters.
            let pad = width(c).saturating_sub(text.chars().count());
            format!("{text}{} ", " ".repeat(pad))
        }
    };
    for c in all {
        out.push_str(&cell(c, c.title()));
    }
    out.push_str(Column::Log.title());
    out.push('\n');
    for row in model.visible() {
        for c in all {
            out.push_str(&cell(c, &c.text(row, now)));
        }
        out.push_str(&Column::Log.text(row, now));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "top_view_tests.rs"]
mod tests;
