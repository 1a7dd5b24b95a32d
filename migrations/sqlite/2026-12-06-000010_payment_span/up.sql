-- A payment may carry the span it grants explicitly (payments imported
-- from the old server, whose transactions named their own valid_from and
-- valid_until): the span is taken as it is, not derived from the payment
-- time and stacked.
ALTER TABLE payments ADD COLUMN span_from BIGINT;
ALTER TABLE payments ADD COLUMN span_until BIGINT;
