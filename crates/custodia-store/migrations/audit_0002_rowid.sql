-- SQLite audit file only: `seq` becomes the table's rowid. `BIGINT PRIMARY KEY` is not a
-- rowid alias in SQLite, so every event was written twice — into the table and into an
-- index on `seq` — and read through that index. Same columns, same values, same order.
CREATE TABLE audit_events_by_rowid (
    seq   INTEGER PRIMARY KEY,
    event BLOB NOT NULL
);
INSERT INTO audit_events_by_rowid (seq, event) SELECT seq, event FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_by_rowid RENAME TO audit_events;
