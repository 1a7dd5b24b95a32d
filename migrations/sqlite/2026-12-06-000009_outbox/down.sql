DROP TABLE webhooks;
DROP TABLE outbox;
ALTER TABLE members DROP COLUMN reminders;
