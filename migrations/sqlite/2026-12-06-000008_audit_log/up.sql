-- The audit log: every change made through the staff console or the CLI,
-- who made it, when, and the values before and after. Rows are only ever
-- added: the triggers refuse any update or delete, whoever asks.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_value TEXT NOT NULL,
    after_value TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- The console looks members up by email and lists the latest payers.
CREATE INDEX members_email ON members (email);
CREATE INDEX payments_paid_at ON payments (paid_at);
