//! The daemon's half of the hook commands (`exec_start_pre`, `exec_start_post`, `exec_stop`,
//! decided in [`crate::supervisor`]'s `hooks`) and of the directories made for a unit.
//!
//! A hook runs through the same spawn path as the unit's main command (its user, group,
//! environment, working directory and limits, and its memory cgroup where units have one), in
//! a session of its own, with its output in the unit's log; `MAINPID` is set for `exec_start_post` and `exec_stop`. The unit's directories
//! are made before its first command of a start runs, and its runtime directories removed
//! once it is `inactive` or `failed`.

use super::Daemon;
use crate::logs::capture::Capture;
use crate::process;
use crate::supervisor::{ExitStatus, HookKind, State, UnitId};
use crate::unit::{HookCommand, Unit};
use std::borrow::Cow;
use std::time::Instant;

impl Daemon {
    /// What to spawn for a start of unit `id`: the unit with its directories made and named in
    /// its environment, and `argv` instead of its command (a hook's) if given.
    pub(super) fn start_command(
        &self,
        id: UnitId,
        argv: Option<&[String]>,
    ) -> Result<Cow<'_, Unit>, String> {
        let unit = &self.units[id];
        if unit.dirs.is_empty() && argv.is_none() {
            return Ok(Cow::Borrowed(unit));
        }
        let mut command = unit.clone();
        if !unit.dirs.is_empty() {
            self.dir_roots.create(unit)?;
            for (var, value) in self.dir_roots.environment(unit) {
                command.env.insert(var.to_string(), value);
            }
        }
        if let Some(argv) = argv {
            command.argv = argv.to_vec();
        }
        Ok(Cow::Owned(command))
    }

    /// `Action::RunHook`: runs command `index` of unit `id`'s `kind` list.
    pub(super) fn run_hook(&mut self, id: UnitId, kind: HookKind, index: usize) {
        let now = Instant::now();
        let Some(hook) = hook_command(&self.units[id], kind, index) else {
            self.supervisor
                .handle_hook_failed(now, id, "no such command (the unit file changed)");
            return;
        };
        let argv = hook.argv.clone();
        let main = self.checks.main_pid.get(&id).copied();
        let main = main.or(self.supervisor.status(id).pid);
        let cgroup = self.memory.cgroup_for_hook(id, &self.units[id]);
        let spawned = self.start_command(id, Some(&argv)).and_then(|command| {
            let mut command = command.into_owned();
            if let Some(main) = main.filter(|_| kind != HookKind::StartPre) {
                command.env.insert("MAINPID".to_string(), main.to_string());
            }
            process::spawn_with(&command, &[], cgroup).map_err(|e| e.to_string())
        });
        let name = self.units[id].name.clone();
        let label = format!("{}[{index}] `{}`", kind.as_str(), argv.join(" "));
        match spawned {
            Ok(spawned) => {
                tracing::info!(unit = %name, pid = spawned.pid, "{label} started");
                self.hook_pids.insert(spawned.pid, id);
                let log = self.logs.log(&name);
                self.set_log_settings(id, &log);
                let capture = Capture::start(log, spawned.stdout, spawned.stderr);
                self.captures.insert(spawned.pid, capture);
                self.supervisor.handle_hook_spawned(now, id, spawned.pid);
            }
            Err(e) => {
                tracing::warn!(unit = %name, "{label} cannot run: {e}");
                self.logs.note(&name, &format!("{label} cannot run: {e}"));
                self.supervisor.handle_hook_failed(now, id, &e);
            }
        }
    }

    /// `Action::KillHook`: SIGKILL to a hook command's group.
    pub(super) fn kill_hook(&mut self, id: UnitId, pgid: u32) {
        if self.hook_pids.get(&pgid) != Some(&id) {
            // Reaped already: the pid may be someone else's by now.
            return;
        }
        if let Err(e) = process::signal_group(pgid, libc::SIGKILL) {
            tracing::warn!(unit = %self.units[id].name, pgid, "cannot kill a hook command: {e}");
        }
    }

    /// A reaped pid that was a hook command's: its output drained, its exit told to the core.
    /// Whether it was one.
    pub(super) fn hook_exited(&mut self, now: Instant, pid: u32, status: ExitStatus) -> bool {
        let Some(id) = self.hook_pids.remove(&pid) else {
            return false;
        };
        if let Some(capture) = self.captures.remove(&pid) {
            capture.drain();
        }
        if let Some((kind, index)) = self.supervisor.running_hook(id, pid)
            && let Some(unit) = self.units.get(id)
        {
            let shown = hook_command(unit, kind, index)
                .map(|c| c.shown())
                .unwrap_or_default();
            let words = format!("{}[{index}] `{shown}` {status}", kind.as_str());
            let name = unit.name.clone();
            tracing::info!(unit = %name, pid, "{words}");
            self.logs.note(&name, &words);
        }
        self.supervisor.handle_hook_exited(now, id, pid, status);
        true
    }

    /// After a change of unit `id`'s state: a unit that stopped loses its runtime directories.
    pub(super) fn after_change(&mut self, id: UnitId, state: State) {
        let unit = &self.units[id];
        if matches!(state, State::Inactive | State::Failed) && !unit.dirs.runtime.names.is_empty() {
            self.dir_roots.remove_runtime(unit);
        }
    }
}

/// Command `index` of `unit`'s `kind` list.
fn hook_command(unit: &Unit, kind: HookKind, index: usize) -> Option<&HookCommand> {
    let list = match kind {
        HookKind::StartPre => &unit.hooks.start_pre,
        HookKind::StartPost => &unit.hooks.start_post,
        HookKind::Stop => &unit.hooks.stop,
    };
    list.get(index)
}
