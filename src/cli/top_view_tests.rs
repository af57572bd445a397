use super::*;
use crate::cli::top_model::tests::info;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn host() -> HostInfo {
    HostInfo {
        mem_total: 4 << 30,
        mem_used: 1 << 30,
        swap_total: 0,
        swap_used: 0,
        pressure_some_avg10: Some(0.5),
        pressure_full_avg10: Some(0.0),
        level: "ok".into(),
        last_event: None,
        svcd_rss: Some(1536 << 10),
        age_ms: None,
    }
}

fn model() -> Model {
    let mut model = Model::new(Duration::from_secs(2));
    let mut chat = info("chat", "running", Some(7), 1.0, 30 << 20);
    chat.restarts = 2;
    let units = [chat, info("nginx-proxy", "failed", None, 0.0, 0)];
    model.apply_status(&units, Some(host()), Instant::now(), true);
    model
}

/// The screen as lines of text.
fn screen(model: &Model, ui: &mut Ui, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| draw(frame, model, ui, Instant::now()))
        .expect("draw");
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

#[test]
fn an_80_by_24_screen_shows_every_unit_the_host_and_the_keys() {
    let mut ui = Ui::new();
    let lines = screen(&model(), &mut ui, 80, 24);
    assert!(lines[0].contains("svcd 1.5M"), "{lines:#?}");
    assert!(lines[0].contains("1 failed, 1 running"), "{lines:#?}");
    assert!(
        lines[1].starts_with("mem [██░░░░] 25% 1.0G/4.0G"),
        "{lines:#?}"
    );
    let host = lines[1].trim_end();
    assert!(host.ends_with("psi [░░░░░░] 0.5/0.0%"), "{lines:#?}");
    for title in ["NAME", "STATE", "RESTARTS", "CPU%", "RSS", "LAST LOG LINE"] {
        assert!(lines[2].contains(title), "{title}: {lines:#?}");
    }
    assert!(lines[3].starts_with("chat "), "{lines:#?}");
    assert!(lines[3].contains(" 2 "), "restarts: {lines:#?}");
    assert!(lines[3].contains("30.0M"), "{lines:#?}");
    assert!(lines[3].contains("hello world"), "{lines:#?}");
    assert!(lines[4].contains("nginx-proxy failed"), "{lines:#?}");
    assert!(lines[23].starts_with("q quit"), "{lines:#?}");
    assert_eq!(ui.page, 20, "rows of units on screen");
}

#[test]
fn columns_drop_out_as_the_width_shrinks() {
    let names = |width| -> Vec<Column> { columns(width, 10).iter().map(|(c, _)| *c).collect() };
    let wide = names(200);
    assert_eq!(wide.len(), 10, "{wide:?}");
    let at_80 = names(80);
    for column in [
        Column::Restarts,
        Column::Cpu,
        Column::Rss,
        Column::Since,
        Column::Log,
    ] {
        assert!(at_80.contains(&column), "{column:?} at 80: {at_80:?}");
    }
    let narrow = names(40);
    assert_eq!(narrow[..2], [Column::Name, Column::State]);
    assert!(narrow.len() < at_80.len(), "{narrow:?}");
    // Never wider than the screen.
    for width in [20, 40, 60, 80, 100, 132] {
        let used: u16 = columns(width, 10).iter().map(|(_, w)| w + 1).sum();
        assert!(used <= width + 1, "{width}: {used}");
    }
    let mut ui = Ui::new();
    let lines = screen(&model(), &mut ui, 40, 10);
    assert!(lines[3].starts_with("chat"), "{lines:#?}");
}

#[test]
fn the_batch_text_has_every_column_and_unit() {
    let text = text(&model(), Instant::now());
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("svc top - svcd 1.5M - 2 units"),
        "{text}"
    );
    assert!(lines[2].starts_with("NAME        STATE    "), "{text}");
    assert!(lines[2].ends_with("SWAP HIST LAST LOG LINE"), "{text}");
    assert!(lines[3].starts_with("chat        running  "), "{text}");
    assert!(lines[3].ends_with("hello world"), "{text}");
    assert!(lines[4].starts_with("nginx-proxy failed   "), "{text}");
    assert_eq!(lines.len(), 5, "{text}");
}

#[test]
fn the_host_line_has_a_bar_for_memory_swap_and_pressure() {
    let mut host = host();
    host.swap_total = 1 << 30;
    host.swap_used = 1 << 29;
    host.pressure_some_avg10 = Some(50.0);
    host.pressure_full_avg10 = None;
    host.level = "warn".into();
    assert_eq!(
        host_line(&host, 4),
        "mem [█░░░] 25% 1.0G/4.0G  swap [██░░] 50% 512.0M/1.0G  psi [██░░] 50.0% [warn]"
    );
}

#[test]
fn sparklines_and_spans_are_short() {
    assert_eq!(sparkline([0, 50, 100].into_iter()), "▁▅█");
    assert_eq!(sparkline([0, 0].into_iter()), "▁▁");
    assert_eq!(sparkline(std::iter::empty()), "");
    assert_eq!(short_span(Duration::from_millis(850)), "850ms");
    assert_eq!(short_span(Duration::from_secs(303)), "5m03s");
    assert_eq!(short_span(Duration::from_secs(3 * 3600 + 120)), "3h02m");
    assert_eq!(
        short_span(Duration::from_secs(12 * 86400 + 4 * 3600)),
        "12d04h"
    );
}

#[test]
fn the_log_view_shows_the_last_lines_and_help_overlays_the_table() {
    let mut ui = Ui::new();
    ui.mode = Mode::Log(super::super::top_keys::LogView {
        name: "chat".into(),
        lines: (1..=100).map(|n| format!("line {n}")).collect(),
        from_bottom: 0,
    });
    let lines = screen(&model(), &mut ui, 80, 24);
    assert!(
        lines[0].contains("log of chat: lines 79-100 of 100"),
        "{lines:#?}"
    );
    assert!(lines[22].contains("line 100"), "{lines:#?}");
    ui.mode = Mode::Help;
    let lines = screen(&model(), &mut ui, 80, 24);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("restart the selected unit")),
        "{lines:#?}"
    );
}
