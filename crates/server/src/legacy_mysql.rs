//! The old server's MariaDB/MySQL database, read for `zhima import
//! zhima-legacy` (cargo feature `legacy-import`, on by default).
//!
//! Every query uses the text protocol, so each value arrives as the text
//! the database writes: a `FLOAT` amount as `199.99` (what the old server's
//! Python saw), not as the binary float `199.99000549…`. The session's
//! `time_zone` is set to UTC, so `TIMESTAMP` columns (`tb_log.created_on`)
//! arrive as UTC; `DATETIME` and `DATE` columns are naive and are taken in
//! the import's `--tz` by the mapping.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use mysql::prelude::Queryable as _;
use mysql::{Conn, Opts, OptsBuilder, Value};
use zhima_app::legacy::LegacySource;
use zhima_domain::legacy::{LegacyLogRow, LegacyTransaction, LegacyUser};

/// A connection to the old database.
pub struct MysqlSource {
    conn: Conn,
    /// Whether `users` has the later `rfid` column.
    has_rfid: bool,
}

impl std::fmt::Debug for MysqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSource")
            .field("has_rfid", &self.has_rfid)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(the --from URL)".to_owned(),
    }
}

impl MysqlSource {
    /// Connects to `url` (`mysql://USER:PASS@HOST:PORT/DB`) and checks the
    /// old server's three tables are there.
    pub fn connect(url: &str) -> Result<MysqlSource, String> {
        let shown = redact(url);
        let opts = Opts::from_url(url).map_err(|e| format!("--from {shown}: {e}"))?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(format!(
                "--from {shown}: name the database: mysql://USER:PASS@HOST:PORT/DB"
            ));
        }
        // a password kept off the command line, as the mysql client reads it
        let password = match opts.get_pass() {
            Some(p) => Some(p.to_owned()),
            None => std::env::var("MYSQL_PWD").ok(),
        };
        let opts = OptsBuilder::from_opts(opts)
            .pass(password)
            .tcp_connect_timeout(Some(Duration::from_secs(10)))
            .read_timeout(Some(Duration::from_secs(600)))
            .prefer_socket(false);
        let mut conn = Conn::new(opts).map_err(|e| format!("{shown}: {e}"))?;
        conn.query_drop("SET time_zone = '+00:00'")
            .map_err(|e| format!("{shown}: {e}"))?;
        let columns = |conn: &mut Conn, table: &str| -> Result<Vec<String>, String> {
            let rows: Vec<Vec<Value>> = conn
                .query_iter(format!(
                    "SELECT column_name FROM information_schema.columns \
                     WHERE table_schema = DATABASE() AND table_name = '{table}'"
                ))
                .map_err(|e| e.to_string())?
                .map(|r| r.map(mysql::Row::unwrap).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|r| text(r.into_iter().next()?))
                .map(|c| c.to_ascii_lowercase())
                .collect())
        };
        let mut has_rfid = false;
        for (table, needed) in [
            ("users", &USER_COLUMNS[..]),
            ("transactions", &TRANSACTION_COLUMNS[..]),
            ("tb_log", &LOG_COLUMNS[..]),
        ] {
            let have = columns(&mut conn, table).map_err(|e| format!("{shown}: {e}"))?;
            if have.is_empty() {
                return Err(format!(
                    "{shown}: there is no table {table}: is this the old zhima's database?"
                ));
            }
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|c| !have.iter().any(|h| h == c))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "{shown}: table {table} has no column {}: is this the old zhima's database?",
                    missing.join(", ")
                ));
            }
            if table == "users" {
                has_rfid = have.iter().any(|h| h == "rfid");
            }
        }
        Ok(MysqlSource { conn, has_rfid })
    }

    /// Runs `sql`; each row as its values.
    fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Value>>, String> {
        self.conn
            .query_iter(sql)
            .map_err(|e| format!("{sql}: {e}"))?
            .map(|r| r.map(mysql::Row::unwrap).map_err(|e| e.to_string()))
            .collect()
    }
}

const USER_COLUMNS: [&str; 14] = [
    "id",
    "openid",
    "username",
    "passwd",
    "avatar_url",
    "email",
    "status",
    "role",
    "city",
    "province",
    "country",
    "gender",
    "language",
    "create_time",
];
const TRANSACTION_COLUMNS: [&str; 7] = [
    "id",
    "member_id",
    "type",
    "amount",
    "valid_from",
    "valid_until",
    "created_on",
];
const LOG_COLUMNS: [&str; 5] = ["id", "type", "code", "message", "created_on"];
/// What a log page selects: the message cut to what an event's detail
/// keeps (a page of 5,000 rows of 64 KiB `TEXT` would be 320 MB).
const LOG_SELECT: &str = "id, type, code, LEFT(message, 300), created_on";

/// A value as text (`NULL`: `None`). Bytes that are not UTF-8 are shown
/// with replacement characters (and then refused by the mapping's rules
/// where they matter).
fn text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
    }
}

fn int(v: Value) -> Option<i64> {
    text(v)?.trim().parse().ok()
}

/// A `DATETIME`; the zero date (`0000-00-00 00:00:00`) is none.
fn datetime(v: Value) -> Option<NaiveDateTime> {
    let t = text(v)?;
    let t = t.trim();
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S"))
        .ok()
        .or_else(|| date_text(t).and_then(|d| d.and_hms_opt(0, 0, 0)))
}

fn date_text(t: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()
}

fn date(v: Value) -> Option<NaiveDate> {
    date_text(text(v)?.trim())
}

/// Takes the values of a row in order.
struct Cells(std::vec::IntoIter<Value>);

impl Cells {
    fn next(&mut self) -> Value {
        self.0.next().unwrap_or(Value::NULL)
    }
}

impl LegacySource for MysqlSource {
    fn users(&mut self) -> Result<Vec<LegacyUser>, String> {
        let sql = format!(
            "SELECT {}{} FROM users ORDER BY id",
            USER_COLUMNS.join(", "),
            if self.has_rfid { ", rfid" } else { "" }
        );
        Ok(self
            .rows(&sql)?
            .into_iter()
            .map(|row| {
                let mut c = Cells(row.into_iter());
                LegacyUser {
                    id: int(c.next()).unwrap_or(0),
                    openid: text(c.next()).unwrap_or_default(),
                    username: text(c.next()).unwrap_or_default(),
                    passwd: text(c.next()),
                    avatar_url: text(c.next()),
                    email: text(c.next()),
                    status: text(c.next()).unwrap_or_default(),
                    role: int(c.next()).unwrap_or(-1),
                    city: text(c.next()),
                    province: text(c.next()),
                    country: text(c.next()),
                    gender: int(c.next()).unwrap_or(0),
                    language: text(c.next()),
                    create_time: datetime(c.next()),
                    rfid: text(c.next()),
                }
            })
            .collect())
    }

    fn transactions(&mut self) -> Result<Vec<LegacyTransaction>, String> {
        let sql = format!(
            "SELECT {} FROM transactions ORDER BY id",
            TRANSACTION_COLUMNS.join(", ")
        );
        Ok(self
            .rows(&sql)?
            .into_iter()
            .map(|row| {
                let mut c = Cells(row.into_iter());
                LegacyTransaction {
                    id: int(c.next()).unwrap_or(0),
                    member_id: int(c.next()).unwrap_or(0),
                    kind: text(c.next()).unwrap_or_default(),
                    amount: text(c.next()).unwrap_or_default(),
                    valid_from: date(c.next()),
                    valid_until: date(c.next()),
                    created_on: datetime(c.next()),
                }
            })
            .collect())
    }

    fn log_after(&mut self, after: i64, limit: usize) -> Result<Vec<LegacyLogRow>, String> {
        let sql =
            format!("SELECT {LOG_SELECT} FROM tb_log WHERE id > {after} ORDER BY id LIMIT {limit}");
        Ok(self
            .rows(&sql)?
            .into_iter()
            .map(|row| {
                let mut c = Cells(row.into_iter());
                LegacyLogRow {
                    id: int(c.next()).unwrap_or(0),
                    kind: text(c.next()).unwrap_or_default(),
                    code: int(c.next()),
                    message: text(c.next()).unwrap_or_default(),
                    // the session is in UTC: a TIMESTAMP arrives as UTC
                    at: datetime(c.next())
                        .map(|t| DateTime::<Utc>::from_naive_utc_and_offset(t, Utc)),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_arrive_as_text_and_zero_dates_are_none() {
        assert_eq!(
            text(Value::Bytes("小明 🚪".as_bytes().to_vec())).unwrap(),
            "小明 🚪"
        );
        assert_eq!(text(Value::NULL), None);
        assert_eq!(text(Value::Bytes(vec![0xff, b'a'])).unwrap(), "\u{fffd}a");
        assert_eq!(int(Value::Bytes(b"42".to_vec())), Some(42));
        assert_eq!(
            datetime(Value::Bytes(b"2018-03-12 19:29:00".to_vec()))
                .unwrap()
                .to_string(),
            "2018-03-12 19:29:00"
        );
        assert_eq!(
            datetime(Value::Bytes(b"0000-00-00 00:00:00".to_vec())),
            None
        );
        assert_eq!(date(Value::Bytes(b"0000-00-00".to_vec())), None);
        assert_eq!(
            date(Value::Bytes(b"2018-03-31".to_vec()))
                .unwrap()
                .to_string(),
            "2018-03-31"
        );
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            redact("mysql://zhima:s3cret@db.local:3306/zhima"),
            "mysql://zhima:***@db.local:3306/zhima"
        );
        assert!(!redact("not a url s3cret").contains("s3cret"));
    }
}
