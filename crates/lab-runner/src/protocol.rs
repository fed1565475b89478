//! The protocol between the job supervisor (this crate) and the sandbox
//! helper (`lab __sandbox`, crate lab-sandbox): it lives in lab-protocol
//! (serde only, no I/O), the one crate of ours the helper links, and is
//! re-exported here.

pub use lab_protocol::{
    DEFAULT_DEVICES, JOB_HOME, Limits, NETWORK_READY, Overlay, PROTOCOL_VERSION, REFUSED, Report,
    SYSTEM_DIRS, SandboxSpec, TERMINATE,
};
