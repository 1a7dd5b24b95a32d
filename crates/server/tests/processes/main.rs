//! The real `zhima` binary as a child process, for what only a process can
//! show: kill -9, a full or read-only disk, a PostgreSQL outage, SIGTERM,
//! two servers on one database, memory under a flood, the CLI at exit.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod backup;
mod crash;
mod disk;
mod flood;
#[cfg(feature = "legacy-import")]
mod legacy;
mod notify;
mod outage;
mod pi;
mod shutdown;
mod systemd;
mod transfer;
mod two_servers;
mod upgrade;
