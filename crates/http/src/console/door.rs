//! The door page (its state, an unlock with a reason) and the access log
//! (filters, pages, CSV).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use zhima_app::sessions::Role;
use zhima_app::AppError;
use zhima_domain::access::{AccessEvent, AccessMethod, Outcome};
use zhima_storage::access::EventQuery;

use super::{
    blocking, format_time, forms, gate, gate_form, local_day_start, page, page_struct, query_value,
    see_other, with_page_headers, Ctx, Posted,
};
use crate::i18n::Texts;
use crate::AppState;

pub(super) fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::resource("/console/log").route(web::get().to(access_log)))
        .service(crate::resource("/console/log.csv").route(web::get().to(access_log_csv)))
        .service(
            crate::resource("/console/door")
                .route(web::get().to(door_page))
                .route(web::post().to(unlock)),
        );
}

/// An access event as a row of a table.
pub(super) struct EventRow {
    pub(super) at: String,
    pub(super) member: String,
    pub(super) method: &'static str,
    pub(super) outcome: &'static str,
    pub(super) reason: String,
    pub(super) detail: String,
}

pub(super) fn event_row(e: &AccessEvent, tz: chrono_tz::Tz) -> EventRow {
    EventRow {
        at: format_time(e.event.at, tz),
        member: e
            .event
            .member
            .map_or(String::new(), |m| format!("#{}", m.0)),
        method: e.event.method.as_str(),
        outcome: e.event.outcome.as_str(),
        reason: e.event.reason.clone(),
        detail: e.event.detail.chars().take(120).collect(),
    }
}

/// The door's state as a tile: its class and words.
pub(super) fn door_tile(state: &AppState, t: &'static Texts) -> (&'static str, &'static str) {
    let health = state.door.controller.health();
    if health.stopped || health.lock_failing {
        ("bad", t.door_fault)
    } else if state.door.controller.is_unlocked() {
        ("warn", t.door_unlocked)
    } else {
        ("ok", t.door_locked)
    }
}

page_struct!("console/door.html", DoorPage {
    door_class: &'static str,
    door_text: &'static str,
    max_secs: u32,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
});

fn render_door(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<&'static str>,
    problem: Option<&'static str>,
) -> HttpResponse {
    let (door_class, door_text) = door_tile(state, ctx.t);
    page(
        status,
        DoorPage {
            frame: ctx.frame("/console/door"),
            door_class,
            door_text,
            max_secs: state.door.max_unlock_secs,
            notice,
            problem,
        }
        .render(),
    )
}

/// `GET /console/door`: the door's state and the unlock form.
async fn door_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let notice = (query_value(&req, "opened").as_deref() == Some("1")).then_some(ctx.t.door_opened);
    render_door(&state, &ctx, StatusCode::OK, notice, None)
}

forms! {
    /// The unlock form.
    UnlockForm { seconds, reason }
}

/// `POST /console/door`: a staff member unlocks the door with a reason,
/// written to the access log with their name before the door moves.
async fn unlock(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Posted<UnlockForm>,
) -> HttpResponse {
    let (ctx, form) = match gate_form(&state, &req, Role::Staff, form, "/console/door").await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let t = ctx.t;
    let seconds = form
        .seconds
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=u64::from(state.door.max_unlock_secs)).contains(s));
    let Some(seconds) = seconds else {
        return render_door(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.unlock_refused),
        );
    };
    let opened = state
        .entrance
        .unlock_by_staff(
            std::time::Duration::from_secs(seconds),
            &ctx.session.member,
            &form.reason,
            state.clock.now(),
        )
        .await;
    match opened {
        Ok(_) => see_other("/console/door?opened=1"),
        Err(AppError::Invalid { .. } | AppError::BadSeconds(_)) => render_door(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            None,
            Some(t.unlock_refused),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "console: the door could not be unlocked");
            render_door(
                &state,
                &ctx,
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(t.door_fault),
            )
        }
    }
}

page_struct!("console/log.html", LogPage {
    outcomes: [&'static str; 4],
    methods: [&'static str; zhima_domain::access::AccessMethod::ALL.len()],
    filters: LogFilters,
    rows: Vec<EventRow>,
    next: Option<String>,
    csv_link: String,
});

const LOG_PAGE: u32 = 50;

/// The log's filters as the form shows them back.
#[derive(Default)]
struct LogFilters {
    outcome: String,
    method: String,
    member: String,
    door: String,
    from: String,
    to: String,
}

impl LogFilters {
    /// The filters as a query string (for the next page and the CSV link).
    fn query(&self) -> String {
        let pairs = [
            ("outcome", &self.outcome),
            ("method", &self.method),
            ("member", &self.member),
            ("door", &self.door),
            ("from", &self.from),
            ("to", &self.to),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `text` percent-encoded for a query string (unreserved bytes kept).
pub(super) fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The log's filters from the query string: outcome, method, member
/// number, door, local dates from and to (inclusive), and the cursor.
/// Values that do not parse are dropped (and not shown back).
fn log_query(req: &HttpRequest, tz: chrono_tz::Tz, limit: u32) -> (EventQuery, LogFilters) {
    let value = |name: &str, max: usize| -> String {
        query_value(req, name)
            .unwrap_or_default()
            .trim()
            .chars()
            .take(max)
            .collect()
    };
    let date = |name: &str| {
        let text = value(name, 10);
        chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .map(|d| (d, text))
    };
    let (from, to) = (date("from"), date("to"));
    let outcome = Outcome::parse(&value("outcome", 16)).ok();
    let method = AccessMethod::parse(&value("method", 16)).ok();
    let member = value("member", 18)
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|m| *m > 0);
    let door = value("door", 64);
    let query = EventQuery {
        outcome,
        method,
        member: member.map(zhima_domain::ids::MemberId),
        door: (!door.is_empty()).then(|| door.clone()),
        since: from.as_ref().map(|(d, _)| local_day_start(*d, tz)),
        until: to
            .as_ref()
            .and_then(|(d, _)| d.succ_opt())
            .map(|d| local_day_start(d, tz)),
        before: query_value(req, "before")
            .and_then(|b| b.parse::<i64>().ok())
            .filter(|b| *b > 0),
        limit,
    };
    let filters = LogFilters {
        outcome: outcome.map_or(String::new(), |o| o.as_str().to_owned()),
        method: method.map_or(String::new(), |m| m.as_str().to_owned()),
        member: member.map_or(String::new(), |m| m.to_string()),
        door,
        from: from.map(|(_, t)| t).unwrap_or_default(),
        to: to.map(|(_, t)| t).unwrap_or_default(),
    };
    (query, filters)
}

/// `GET /console/log`: the access log, newest first, 50 a page, filtered.
async fn access_log(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let (query, filters) = log_query(&req, state.tz, LOG_PAGE);
    let st = state.clone();
    let Some(Ok(events)) = blocking(move || st.entrance.events(query)).await else {
        return ctx.busy();
    };
    let q = filters.query();
    let next = (events.len() == LOG_PAGE as usize)
        .then(|| {
            events
                .last()
                .map(|e| format!("/console/log?{q}&before={}", e.id))
        })
        .flatten();
    page(
        StatusCode::OK,
        LogPage {
            frame: ctx.frame("/console/log"),
            outcomes: ["granted", "refused", "event", "fault"],
            methods: zhima_domain::access::AccessMethod::ALL.map(|m| m.as_str()),
            rows: events.iter().map(|e| event_row(e, state.tz)).collect(),
            next,
            csv_link: format!("/console/log.csv?{q}"),
            filters,
        }
        .render(),
    )
}

/// A CSV cell: quoted, and never read as a formula by a spreadsheet (a
/// leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
fn csv_cell(text: &str) -> String {
    let guarded = zhima_app::transfer::guard_cell(text);
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

/// `GET /console/log.csv`: the same filters, up to 500 events, as CSV for
/// a spreadsheet (UTF-8 with a byte-order mark, times in the space's zone).
async fn access_log_csv(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let ctx = match gate(&state, &req, Role::Staff).await {
        Ok(ctx) => ctx,
        Err(answer) => return answer,
    };
    let (query, _) = log_query(&req, state.tz, zhima_storage::access::PAGE_MAX);
    let st = state.clone();
    let Some(Ok(events)) = blocking(move || st.entrance.events(query)).await else {
        return ctx.busy();
    };
    // the export's columns and cells (zhima export entries)
    let mut csv = format!(
        "\u{feff}{}\r\n",
        zhima_app::transfer::ENTRY_COLUMNS.join(",")
    );
    for e in &events {
        let cells = zhima_app::transfer::entry_row(e, state.tz);
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        csv.push_str(&line.join(","));
        csv.push_str("\r\n");
    }
    with_page_headers(HttpResponse::Ok())
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"access-log.csv\"",
        ))
        .body(csv)
}
