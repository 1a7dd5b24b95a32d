//! A throwaway MariaDB database in the old zhima server's schema (as its
//! issue describes the tables: InnoDB, three tables), on the server at
//! `TEST_ZHIMA_MARIADB_URL` (default `mysql://root@127.0.0.1:3306`). When
//! none answers the tests that need it say they were skipped, unless
//! `REQUIRE_MARIADB` is set (`.ci/run` sets it), which makes that a
//! failure.

use mysql::prelude::Queryable as _;

/// The old server's tables. `utf8mb4`: MariaDB's `utf8` (three bytes)
/// cannot hold an emoji, and the old members had them in their nicknames.
pub const SCHEMA: [&str; 3] = [
    "CREATE TABLE users (
        id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        openid varchar(40) NOT NULL UNIQUE,
        username varchar(200) NOT NULL UNIQUE,
        passwd varchar(50),
        avatar_url varchar(500),
        email varchar(200),
        status varchar(20),
        role int,
        city varchar(100),
        province varchar(100),
        country varchar(100),
        gender tinyint,
        language varchar(5),
        last_active_type varchar(50),
        last_active_time datetime,
        create_time datetime,
        last_update datetime
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE transactions (
        id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        member_id int,
        type varchar(20),
        description text,
        amount float,
        currency varchar(4),
        valid_from date,
        valid_until date,
        created_on datetime
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE TABLE tb_log (
        id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
        type varchar(20),
        code int,
        message text,
        created_on timestamp NULL DEFAULT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
];

/// A database made for one test; dropped with it.
pub struct LegacyDb {
    server: String,
    name: String,
}

impl LegacyDb {
    /// A new empty database in the old schema, or `None` (skipped) when no
    /// MariaDB answers.
    pub fn create(tag: &str) -> Option<LegacyDb> {
        let server = std::env::var("TEST_ZHIMA_MARIADB_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned());
        let name = format!(
            "zhima_legacy_{tag}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_subsec_micros()
        );
        let db = LegacyDb { server, name };
        match db.conn_to("") {
            Ok(mut c) => {
                c.query_drop(format!("CREATE DATABASE {} CHARACTER SET utf8mb4", db.name))
                    .unwrap();
            }
            Err(e) => {
                if std::env::var_os("REQUIRE_MARIADB").is_some() {
                    panic!(
                        "MariaDB is required (REQUIRE_MARIADB) but {}: {e}",
                        db.server
                    );
                }
                eprintln!("skipped: no MariaDB at {} ({e})", db.server);
                return None;
            }
        }
        for table in SCHEMA {
            db.exec(table);
        }
        Some(db)
    }

    fn conn_to(&self, database: &str) -> Result<mysql::Conn, mysql::Error> {
        let opts = mysql::Opts::from_url(&format!("{}/{database}", self.server))?;
        mysql::Conn::new(opts)
    }

    /// The URL `zhima import zhima-legacy --from` takes.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Runs statements in a session on Shanghai time (as the old server's
    /// was: its `TIMESTAMP`s are stored as the instants that wall clock
    /// meant).
    pub fn exec(&self, sql: &str) {
        let mut c = self.conn_to(&self.name).unwrap();
        c.query_drop("SET time_zone = '+08:00'").unwrap();
        c.query_drop(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for LegacyDb {
    fn drop(&mut self) {
        if let Ok(mut c) = self.conn_to("") {
            let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}
