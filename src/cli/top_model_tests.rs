use super::*;
use crate::control::MemoryInfo;

/// A unit as svcd would describe it, for the tests of `svc top`.
pub(crate) fn info(name: &str, state: &str, pid: Option<u32>, cpu: f64, rss: u64) -> UnitInfo {
    UnitInfo {
        name: name.to_string(),
        state: state.to_string(),
        ready: state == "running",
        pid,
        since: "2026-01-01T00:00:00.000Z".to_string(),
        restarts: 0,
        last_exit: None,
        memory: MemoryInfo {
            rss,
            swap: 0,
            mode: Default::default(),
            age_ms: None,
            ladder: None,
            host_ladder: None,
        },
        cpu,
        description: None,
        reason: String::new(),
        reason_kind: String::new(),
        enabled: true,
        command: Vec::new(),
        next_start: None,
        starts: 1,
        errors: Vec::new(),
        since_secs: 10.0,
        status_text: None,
        logs: vec!["2026-01-01T00:00:00.000Z out hello world".to_string()],
        log_error: None,
        paused: false,
        paused_by: None,
        last_reload: None,
        ..Default::default()
    }
}

/// Samples unit `a` (pid, CPU seconds, RSS) at `at`; its row.
fn sample(model: &mut Model, pid: u32, cpu: f64, rss: u64, at: Instant) -> Row {
    let unit = info("a", "running", Some(pid), cpu, rss);
    model.apply_status(&[unit], None, at, true);
    model.rows()[0].clone()
}

#[test]
fn cpu_percent_is_the_rate_between_two_samples_of_one_run() {
    let start = Instant::now();
    let mut model = Model::new(Duration::from_secs(2));
    // First sample: the average since the unit entered its state (1 s over 10 s).
    let row = sample(&mut model, 7, 1.0, 100, start);
    assert_eq!(row.cpu_percent.map(|p| p.round()), Some(10.0));
    assert_eq!(row.last_log, "hello world");
    let later = start + Duration::from_secs(2);
    let row = sample(&mut model, 7, 2.0, 300, later);
    assert_eq!(row.cpu_percent.map(|p| p.round()), Some(50.0));
    assert_eq!(row.rss_history, [100, 300]);
    // A new run (another pid, its CPU time starting again): no rate from the old run's figure.
    let row = sample(&mut model, 8, 0.5, 300, later + Duration::from_secs(2));
    assert_eq!(row.cpu_percent.map(|p| p.round()), Some(5.0));
}

#[test]
fn history_keeps_the_last_samples_and_partial_answers_add_none() {
    let now = Instant::now();
    let mut model = Model::new(Duration::from_secs(2));
    for n in 0..(HISTORY as u64 + 3) {
        sample(&mut model, 7, 0.0, n, now);
    }
    model.apply_status(&[info("a", "running", Some(7), 0.0, 999)], None, now, false);
    let history: Vec<u64> = model.rows()[0].rss_history.iter().copied().collect();
    assert_eq!(history, (3..HISTORY as u64 + 3).collect::<Vec<_>>());
}

#[test]
fn events_change_the_state_and_a_full_answer_drops_removed_units() {
    let now = Instant::now();
    let mut model = Model::new(Duration::from_secs(2));
    let units = [
        info("a", "running", Some(7), 0.0, 0),
        info("b", "running", Some(8), 0.0, 0),
    ];
    model.apply_status(&units, None, now, true);
    assert_eq!(model.selected.as_deref(), Some("a"));
    let event = UnitEvent {
        time: String::new(),
        unit: "b".into(),
        old: "running".into(),
        new: "backoff".into(),
        pid: None,
        reason: "killed by SIGKILL".into(),
    };
    model.apply_event(&event, now);
    assert_eq!(model.rows()[1].state, "backoff");
    assert_eq!(model.rows()[1].pid, None);
    model.apply_status(&units[1..], None, now, true);
    assert_eq!(model.rows().len(), 1);
    assert_eq!(
        model.selected.as_deref(),
        Some("b"),
        "the selection moves off a gone unit"
    );
}

#[test]
fn filter_sort_and_selection_follow_names() {
    let now = Instant::now();
    let mut model = Model::new(Duration::from_secs(2));
    let mut big = info("web", "running", Some(9), 0.0, 5000);
    big.restarts = 3;
    let units = [
        info("api", "running", Some(7), 0.0, 100),
        info("batch", "failed", None, 0.0, 0),
        big,
    ];
    model.apply_status(&units, None, now, true);
    let names = |m: &Model| {
        m.visible()
            .iter()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&model), ["api", "batch", "web"]);
    model.sort = Column::Rss;
    assert_eq!(names(&model), ["web", "api", "batch"]);
    model.sort = Column::State;
    assert_eq!(names(&model)[0], "batch");
    model.sort = Column::Restarts;
    assert_eq!(names(&model)[0], "web");
    // api, selected first, is second now: one down is batch, whatever the order was before.
    model.move_selection(1);
    assert_eq!(model.selected.as_deref(), Some("batch"));
    model.move_selection(5);
    assert_eq!(
        model.selected.as_deref(),
        Some("batch"),
        "the last row stays selected"
    );
    model.filter = "WE".into();
    model.reselect();
    assert_eq!(names(&model), ["web"]);
    assert_eq!(model.selected.as_deref(), Some("web"));
    model.filter = "fail".into();
    model.reselect();
    assert_eq!(names(&model), ["batch"]);
}

#[test]
fn the_interval_steps_through_the_list() {
    let mut model = Model::new(Duration::from_secs(2));
    model.step_interval(true);
    assert_eq!(model.interval, Duration::from_secs(5));
    model.step_interval(false);
    model.step_interval(false);
    assert_eq!(model.interval, Duration::from_secs(1));
    // An interval given on the command line, between two steps.
    model.interval = Duration::from_secs(3);
    model.step_interval(true);
    assert_eq!(model.interval, Duration::from_secs(5));
    model.interval = Duration::from_secs(3);
    model.step_interval(false);
    assert_eq!(model.interval, Duration::from_secs(2));
    model.interval = Duration::from_secs(600);
    model.step_interval(true);
    assert_eq!(model.interval, Duration::from_secs(60));
}
