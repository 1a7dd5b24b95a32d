DROP INDEX payments_paid_at;
DROP INDEX members_email;
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
