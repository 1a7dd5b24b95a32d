DROP TABLE access_events;
