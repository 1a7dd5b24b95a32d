ALTER TABLE payments DROP COLUMN span_until;
ALTER TABLE payments DROP COLUMN span_from;
