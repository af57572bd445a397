//! The control socket: a versioned request/response protocol (see `docs/protocol.md`), the
//! daemon's side ([`server`]) and the client's ([`client`]).

pub mod client;
mod events;
mod logs;
pub mod protocol;
pub mod server;

pub use protocol::{
    Command, ErrorKind, ExitInfo, HostInfo, LadderInfo, LogEvent, LogLine, MemoryInfo,
    PROTOCOL_VERSION, Permission, ReloadChanges, ReloadInfo, Request, Response, RunInfo,
    ScheduleInfo, UnitEvent, UnitInfo,
};
