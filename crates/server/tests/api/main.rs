//! The server in this process, spoken to over HTTP: the Member API and its
//! documented examples, the door, the QR codes, the OAuth2 provider and the
//! Partner API, and hostile input. One test binary (each one links the whole
//! server).

#[path = "../support/mod.rs"]
mod support;

mod api_docs;
mod browser;
mod console;
mod door_api;
mod hostile;
mod member_api;
mod notify;
mod partner_api;
mod qr_door;
