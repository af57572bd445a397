//! The kernel's OOM kills, as the daemon learns of them from a unit's cgroup.

use super::{ReasonKind, Supervisor, UnitId};

impl Supervisor {
    /// The unit's last exit was the kernel's OOM killer (its cgroup counted the kill): the
    /// exit's reason says so in `words` ("killed by the kernel: out of memory at the 200M
    /// limit", after the signal), and its kind is [`ReasonKind::OomKill`], as is the state's
    /// where that names the exit (a restart's "restarted (...)" keeps its own kind).
    pub fn note_oom_kill(&mut self, id: UnitId, words: &str) {
        self.note_last_exit(id, words);
        self.publishing(id, |sup| {
            let unit = &mut sup.units[id];
            if let Some(exit) = &mut unit.last_exit {
                exit.kind = ReasonKind::OomKill;
                if unit.reason.text.contains(&exit.reason)
                    && matches!(unit.reason.kind, ReasonKind::Killed | ReasonKind::Exited)
                {
                    unit.reason.kind = ReasonKind::OomKill;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ExitStatus, Supervisor, UnitConfig};
    use crate::supervisor::ReasonKind;
    use crate::unit::RestartPolicy;
    use std::time::Instant;

    #[test]
    fn an_oom_kill_is_the_kind_and_the_words_of_the_exit() {
        let now = Instant::now();
        let mut sup = Supervisor::new();
        let mut config = UnitConfig::named("leak");
        config.restart.policy = RestartPolicy::Never;
        let id = sup.add_unit(now, config);
        sup.handle_start(now, id, "started by operator");
        while sup.poll_action().is_some() {}
        sup.handle_spawned(now, id, 100);
        sup.handle_exit(now, id, ExitStatus::Signal(9));
        sup.note_oom_kill(id, "killed by the kernel: out of memory at the 200M limit");
        let status = sup.status(id);
        let exit = status.last_exit.expect("an exit");
        assert_eq!(exit.kind, ReasonKind::OomKill);
        assert_eq!(
            exit.reason,
            "killed by SIGKILL; killed by the kernel: out of memory at the 200M limit"
        );
        assert_eq!(status.reason_kind, ReasonKind::OomKill);
        assert!(status.reason.contains("out of memory"), "{}", status.reason);
    }
}
