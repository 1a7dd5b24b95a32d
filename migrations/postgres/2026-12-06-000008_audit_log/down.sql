DROP INDEX payments_paid_at;
DROP INDEX members_email;
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
