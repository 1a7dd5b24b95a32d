DROP TABLE write_lock;
DROP TABLE api_keys;
DROP TABLE payments;
DROP TABLE members;
