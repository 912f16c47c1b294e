-- An SQLite workload: sqlite3 takes its page cache, parse trees, sorter
-- buffers and result rows from malloc. Output is deterministic.
PRAGMA cache_size = -20000;
PRAGMA journal_mode = WAL;
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, score REAL);
CREATE TABLE events(id INTEGER PRIMARY KEY, user_id INTEGER, kind TEXT, payload TEXT, amount INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO users SELECT i, 'user' || i || substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26), i % 37, (i * 7919 % 10007) / 3.0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
INSERT INTO events SELECT i, 1 + (i * 2654435761) % 20000,
  CASE i % 5 WHEN 0 THEN 'alloc' WHEN 1 THEN 'free' WHEN 2 THEN 'realloc' WHEN 3 THEN 'mmap' ELSE 'munmap' END,
  printf('%0*d', 1 + i % 200, i), (i * 31) % 1000
FROM n;
CREATE INDEX events_user ON events(user_id, kind);
CREATE INDEX users_grp ON users(grp, score);
SELECT 'count', count(*), sum(amount), sum(length(payload)) FROM events;
SELECT kind, count(*), sum(amount), max(length(payload)) FROM events GROUP BY kind ORDER BY kind;
SELECT u.grp, count(DISTINCT u.id), sum(e.amount), round(avg(u.score), 3)
FROM users u JOIN events e ON e.user_id = u.id
GROUP BY u.grp ORDER BY sum(e.amount) DESC LIMIT 10;
SELECT name, total FROM (
  SELECT u.name, sum(e.amount) AS total, rank() OVER (PARTITION BY u.grp ORDER BY sum(e.amount) DESC, u.id) AS r
  FROM users u JOIN events e ON e.user_id = u.id GROUP BY u.id
) WHERE r = 1 ORDER BY total DESC, name LIMIT 10;
SELECT group_concat(kind, ','), count(*) FROM (SELECT DISTINCT kind FROM events ORDER BY kind);
SELECT length(group_concat(payload, '')) FROM (SELECT payload FROM events ORDER BY payload DESC LIMIT 50000);
DELETE FROM events WHERE id % 3 = 0;
UPDATE users SET name = upper(name) || '-' || grp WHERE id % 2 = 0;
VACUUM;
SELECT 'after', count(*), sum(amount) FROM events;
SELECT count(*), sum(length(name)) FROM users WHERE name LIKE 'USER1%';
PRAGMA integrity_check;
