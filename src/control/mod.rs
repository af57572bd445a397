//! The control socket: a versioned request/response protocol (see `docs/protocol.md`), the
//! daemon's side ([`server`]) and the client's ([`client`]).

pub mod client;
pub mod protocol;
pub mod server;

pub use protocol::{
    Command, ErrorKind, ExitInfo, HostInfo, MemoryInfo, PROTOCOL_VERSION, Request, Response,
    UnitInfo,
};
