DROP TRIGGER access_events_history_delete ON access_events;
DROP TRIGGER access_events_history_update ON access_events;
DROP TRIGGER access_events_history_insert ON access_events;
DROP TRIGGER token_ledger_history ON token_ledger;
DROP TRIGGER vip_periods_history ON vip_periods;
DROP TRIGGER payments_history ON payments;
DROP FUNCTION zhima_member_history_changed();
ALTER TABLE members DROP COLUMN history_version;
